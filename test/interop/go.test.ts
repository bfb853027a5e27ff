/**
 * examples/verify-go (go-cose) verifies capframe tokens. The binary comes from
 * scripts/ci-interop.sh, which the suite runs first (a no-op when up to date).
 */
import { describeExampleVerifier } from './suite.js';

describeExampleVerifier('Go (go-cose)', {
  part: 'go',
  command: ['.interop/bin/verify-go'],
});
