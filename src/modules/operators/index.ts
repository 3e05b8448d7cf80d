export { OperatorsService, BOOTSTRAP_OPERATOR, type Operator } from './service.js';
