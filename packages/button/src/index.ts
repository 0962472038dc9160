// Placeholder until the button lands: keeps the build green.
(window as unknown as { PushCash: unknown }).PushCash = {};
