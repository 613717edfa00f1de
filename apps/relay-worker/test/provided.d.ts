// What vitest.config.ts provides to the tests (read with `inject()`).
declare module 'vitest' {
  export interface ProvidedContext {
    smtpPort: number;
    sinkHttpPort: number;
    /** The stall control server of global-setup.ts. */
    stallPort: number;
    /** The webhook receiver of global-setup.ts (acme's TENANT_WEBHOOKS url). */
    webhookPort: number;
    webhookSecret: string;
    /** Greeting servers of global-setup.ts: 421 and 554 to every connection; `GET /` counts them. */
    busyPort: number;
    refusingPort: number;
    tenantTokens: Record<string, string>;
    adminToken: string;
    /** The project's SHARDS binding: shards per tenant. */
    shards: number;
    /** The limits project's smarthost (limits-setup.ts) and its control server. */
    limitedPort: number;
    limitedControlPort: number;
  }
}

export {};
