/** Subject, stream and key tokens: base64url of a name (NATS allows few characters there). */
export const token = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
