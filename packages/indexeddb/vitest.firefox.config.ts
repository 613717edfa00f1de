// The conformance suite in Debian's Firefox ESR: see e2e/system-browser-config.ts.
import { systemBrowserConfig } from './e2e/system-browser-config.js';

export default systemBrowserConfig('firefox');
