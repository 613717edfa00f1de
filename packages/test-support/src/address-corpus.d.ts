export interface AddressCase {
  readonly address: string;
  /** Accepted as a recipient. */
  readonly valid: boolean;
  /** Accepted as a sender, where it differs from `valid`. */
  readonly sender?: boolean;
  readonly why?: string;
}
export const addressCorpus: readonly AddressCase[];
export const sameRecipient: readonly (readonly [string, string, boolean])[];
