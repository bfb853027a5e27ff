/**
 * The runtime policy (SPEC §3, §4): load and validate a YAML policy, decide
 * tool calls, compile argument constraints for tokens, hot-reload.
 */
export type {
  AgentConfig,
  CompiledConstraints,
  Constraint,
  Decision,
  DecideInput,
  Grant,
  Operator,
  Policy,
  Rule,
  ServerConfig,
} from './types.js';
export { OPERATORS, compileConstraints } from './constraints.js';
export { toolMatches, patternCovers } from './tool-pattern.js';
export { DEFAULT_TTL } from './decide.js';
export { loadPolicy, loadPolicySync, parsePolicy } from './load.js';
export { watchPolicy, type PolicyWatcher } from './watch.js';
export { DECISION_CODES, loadCasesSync, parseCases, runCases, type CaseResult, type PolicyCase } from './cases.js';
