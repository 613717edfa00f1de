// The conformance suite in Debian's WebKitGTK: see e2e/system-browser-config.ts.
import { systemBrowserConfig } from './e2e/system-browser-config.js';

export default systemBrowserConfig('webkit');
