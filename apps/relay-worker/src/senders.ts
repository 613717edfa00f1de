/**
 * Sender policy: per tenant, the envelope senders (`from`) it may submit with, from the
 * `TENANT_SENDERS` variable: JSON `{ "<tenant>": ["alice@example.com", "@example.org", ""] }`.
 *
 * - `"alice@example.com"`: that address (compared ignoring ASCII case, as recipients are);
 * - `"@example.org"`: any address at exactly that domain (not its subdomains);
 * - `""`: the null reverse-path (a sender of DSNs, who gets no bounce back);
 * - `"*"`: any address (but not `""`): for a single-tenant relay or a development setup.
 *
 * A tenant the variable does not name may send from no address at all: a relay must not let a
 * tenant send as anyone (or aim bounces at a third party by forging the sender) because nobody
 * wrote a policy down. Bounces go to the envelope sender, so they only ever reach a sender that
 * passed this policy at submission.
 */
import { addressKey, addressProblem } from '@mailspool/relay/address';
import { tenantEntries } from './settings.js';

/** The senders one tenant may use. */
export interface SenderRule {
  readonly anyAddress: boolean;
  readonly nullSender: boolean;
  readonly addresses: ReadonlySet<string>;
  readonly domains: ReadonlySet<string>;
}

const NONE: SenderRule = {
  anyAddress: false,
  nullSender: false,
  addresses: new Set(),
  domains: new Set(),
};

/** Parses `TENANT_SENDERS`; throws a plain Error naming the bad entry. */
export function parseTenantSenders(
  raw: string | undefined,
  tenants: ReadonlySet<string>,
): ReadonlyMap<string, SenderRule> {
  const rules = new Map<string, SenderRule>();
  for (const [tenant, list] of tenantEntries(
    'TENANT_SENDERS',
    raw,
    'tenant id → list of senders',
    tenants,
  )) {
    if (!Array.isArray(list)) throw new Error(`TENANT_SENDERS: ${tenant} needs a list`);
    let anyAddress = false;
    let nullSender = false;
    const addresses = new Set<string>();
    const domains = new Set<string>();
    for (const entry of list) {
      if (entry === '*') anyAddress = true;
      else if (entry === '') nullSender = true;
      else if (typeof entry === 'string' && entry.startsWith('@')) {
        if (addressProblem(`postmaster${entry}`, 'sender') !== undefined) {
          throw new Error(`TENANT_SENDERS: ${tenant}: ${JSON.stringify(entry)} is not a domain`);
        }
        domains.add(addressKey(entry.slice(1)));
      } else {
        const problem = addressProblem(entry, 'sender');
        if (problem !== undefined) {
          throw new Error(`TENANT_SENDERS: ${tenant}: ${JSON.stringify(entry)} ${problem}`);
        }
        addresses.add(addressKey(entry as string));
      }
    }
    rules.set(tenant, { anyAddress, nullSender, addresses, domains });
  }
  return rules;
}

/** The rule of `tenant`: none at all when the configuration does not name it. */
export function senderRule(rules: ReadonlyMap<string, SenderRule>, tenant: string): SenderRule {
  return rules.get(tenant) ?? NONE;
}

/** True when `rule` lets its tenant submit with envelope sender `sender` (already a valid address). */
export function senderAllowed(rule: SenderRule, sender: string): boolean {
  if (sender === '') return rule.nullSender;
  if (rule.anyAddress) return true;
  const key = addressKey(sender);
  return rule.addresses.has(key) || rule.domains.has(key.slice(key.lastIndexOf('@') + 1));
}
