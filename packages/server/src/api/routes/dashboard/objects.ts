import type { FastifyInstance } from 'fastify';
import type { Dash } from './kit.js';
export function objectRoutes(_app: FastifyInstance, _d: Dash): void {}
