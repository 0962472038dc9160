/**
 * The dispute reason codes a dispute may carry: exactly the lists of Push Cash's reference (Visa, Mastercard, ACH
 * returns). Pure: no database, no I/O.
 */
export type DisputeNetwork = 'visa' | 'mastercard' | 'ach';

const range = (from: number, to: number, fmt: (n: number) => string): string[] =>
  Array.from({ length: to - from + 1 }, (_, k) => fmt(from + k));

/** Visa: 10.1–10.5 (fraud), 11.1–11.3 (authorization), 12.1–12.7 (processing errors), 13.1–13.9 (consumer disputes). */
const VISA = [
  ...range(1, 5, (n) => `10.${n}`),
  ...range(1, 3, (n) => `11.${n}`),
  ...range(1, 7, (n) => `12.${n}`),
  ...range(1, 9, (n) => `13.${n}`),
];

/** Mastercard: the reference's 48xx codes, and 4999. */
const MASTERCARD = ['4807', '4808', '4812', '4831', '4834', '4837', '4840', '4841', '4842', '4846', '4849', '4850', '4853', '4854', '4855', '4859',
  '4860', '4863', '4870', '4871', '4999'];

/** ACH return codes: R01–R47, R50–R53, R61, R62, R67–R77, R80–R85. */
const r = (n: number) => `R${String(n).padStart(2, '0')}`;
const ACH = [...range(1, 47, r), ...range(50, 53, r), r(61), r(62), ...range(67, 77, r), ...range(80, 85, r)];

/** Every accepted code, by network. */
export const DISPUTE_CODES: Readonly<Record<DisputeNetwork, readonly string[]>> = { visa: VISA, mastercard: MASTERCARD, ach: ACH };

const NETWORK_OF = new Map<string, DisputeNetwork>(
  (Object.entries(DISPUTE_CODES) as [DisputeNetwork, readonly string[]][]).flatMap(([net, codes]) => codes.map((c) => [c, net] as const)),
);

/** The network a code belongs to, or undefined for a code that is not one of the lists (exact match: `r01` is not `R01`). */
export function disputeNetwork(code: string): DisputeNetwork | undefined {
  return NETWORK_OF.get(code);
}

export function isDisputeCode(code: unknown): code is string {
  return typeof code === 'string' && NETWORK_OF.has(code);
}

/** For messages: which families are accepted. */
export const DISPUTE_CODE_FAMILIES =
  'Visa 10.1–10.5, 11.1–11.3, 12.1–12.7, 13.1–13.9; Mastercard 4807, 4808, 4812, 4831, 4834, 4837, 4840–4842, 4846, 4849, 4850, 4853–4855, 4859, 4860, 4863, 4870, 4871, 4999; ACH R01–R47, R50–R53, R61, R62, R67–R77, R80–R85';
