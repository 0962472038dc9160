/**
 * The HTTP edge of the error catalog (domain/errors.ts): every error Cashwire answers with has one JSON shape,
 * `{error: {code, message, field?}}`, a stable code and the status the catalog gives it.
 */
import { STATUS_CODES } from 'node:http';
import { DomainError, ERROR_CATALOG, errors, type ErrorCode } from '../domain/errors.js';

export { DomainError, errors, type ErrorCode };

export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string };
}

export function httpStatus(err: DomainError): number {
  return ERROR_CATALOG[err.code].status;
}

export function errorBody(err: DomainError): ErrorBody {
  return { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
}

/** A complete raw HTTP/1.1 response in the error shape, for answers written straight to a socket. */
export function rawErrorResponse(code: ErrorCode, message?: string): string {
  const status = ERROR_CATALOG[code].status;
  const body = JSON.stringify(errorBody(new DomainError(code, message)));
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
