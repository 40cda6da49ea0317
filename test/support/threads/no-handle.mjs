// Exports no handler: a thread agent on it cannot start.
export const nothing = 1;
