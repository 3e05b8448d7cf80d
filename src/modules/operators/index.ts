export { OperatorsService, BOOTSTRAP_OPERATOR, OPERATOR_FAILURES_PER_NETWORK, OPERATOR_FAILURES_PER_SOURCE, type Operator } from './service.js';
