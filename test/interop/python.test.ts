/**
 * examples/verify-python (pycose) verifies capframe tokens. The venv comes from
 * scripts/ci-interop.sh, which the suite runs first (a no-op when up to date).
 */
import { describeExampleVerifier } from './suite.js';

describeExampleVerifier('Python (pycose)', {
  part: 'python',
  command: ['.interop/venv/bin/python', 'examples/verify-python/verify.py'],
});
