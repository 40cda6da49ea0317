const { register } = await import('tsx/esm/api');
register();
await import('./w.ts');
