export * from './catalog.js';
export * from './render.js';
export * from './signing.js';
