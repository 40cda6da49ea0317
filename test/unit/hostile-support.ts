export { actor, agent, describeValue } from '../../system/index.js';
export { toErrorInfo as toErrorInfoForTests } from '../../src/errors.js';
