/**
 * Nigerian banks as a payer knows them: the bank codes that Sendcash charges and payers carry (CBN codes, and the
 * longer codes the fintech banks use on NIP), with the name to show instead of the code; and what a payer's bank
 * details must look like. Pure.
 */

export interface Bank {
  code: string;
  name: string;
}

/** Sorted by name, as the payer page lists them. */
export const BANKS: readonly Bank[] = [
  { code: '044', name: 'Access Bank' },
  { code: '023', name: 'Citibank Nigeria' },
  { code: '050', name: 'Ecobank Nigeria' },
  { code: '070', name: 'Fidelity Bank' },
  { code: '011', name: 'First Bank of Nigeria' },
  { code: '214', name: 'First City Monument Bank (FCMB)' },
  { code: '103', name: 'Globus Bank' },
  { code: '058', name: 'Guaranty Trust Bank (GTBank)' },
  { code: '030', name: 'Heritage Bank' },
  { code: '301', name: 'Jaiz Bank' },
  { code: '082', name: 'Keystone Bank' },
  { code: '50211', name: 'Kuda Bank' },
  { code: '303', name: 'Lotus Bank' },
  { code: '50515', name: 'Moniepoint' },
  { code: '999992', name: 'OPay' },
  { code: '107', name: 'Optimus Bank' },
  { code: '999991', name: 'PalmPay' },
  { code: '104', name: 'Parallex Bank' },
  { code: '076', name: 'Polaris Bank' },
  { code: '105', name: 'PremiumTrust Bank' },
  { code: '101', name: 'Providus Bank' },
  { code: '106', name: 'Signature Bank' },
  { code: '221', name: 'Stanbic IBTC Bank' },
  { code: '068', name: 'Standard Chartered Bank' },
  { code: '232', name: 'Sterling Bank' },
  { code: '100', name: 'SunTrust Bank' },
  { code: '302', name: 'TAJBank' },
  { code: '102', name: 'Titan Trust Bank' },
  { code: '032', name: 'Union Bank of Nigeria' },
  { code: '033', name: 'United Bank for Africa (UBA)' },
  { code: '215', name: 'Unity Bank' },
  { code: '035', name: 'Wema Bank' },
  { code: '057', name: 'Zenith Bank' },
];

const BY_CODE = new Map(BANKS.map((b) => [b.code, b.name]));

/** The bank's name for a code; a code this table does not know shows as "Bank <code>". */
export function bankName(code: string): string {
  const c = code.trim();
  return BY_CODE.get(c) ?? `Bank ${c}`;
}

export function isKnownBank(code: string): boolean {
  return BY_CODE.has(code.trim());
}

/** A Nigerian account number (NUBAN): exactly 10 digits. */
export const NUBAN = /^[0-9]{10}$/;

/** A bank code as the payer page sends it: 3 digits (CBN), up to 6 for the fintech banks' NIP codes. */
export const BANK_CODE = /^[0-9]{3,6}$/;

/**
 * Why the payer's details are not acceptable (Sendcash's field names), exactly as sent: no spaces in the account
 * number or the code (the page takes them out). Empty fields are not checked here.
 */
export function payerDetailsProblem(p: { sourceAccountNumber?: string; sourceBankCode?: string; senderAccountName?: string }):
  { field: 'sourceAccountNumber' | 'sourceBankCode' | 'senderAccountName'; message: string } | undefined {
  const account = p.sourceAccountNumber;
  if (account && !NUBAN.test(account)) {
    return { field: 'sourceAccountNumber', message: 'sourceAccountNumber must be a 10-digit Nigerian account number (NUBAN), digits only' };
  }
  const bank = p.sourceBankCode;
  if (bank && !BANK_CODE.test(bank)) return { field: 'sourceBankCode', message: 'sourceBankCode must be a bank code of 3 to 6 digits, e.g. "058"' };
  const name = p.senderAccountName;
  if (name !== undefined && name.length > 0 && !name.trim()) return { field: 'senderAccountName', message: 'senderAccountName must not be blank' };
  return undefined;
}
