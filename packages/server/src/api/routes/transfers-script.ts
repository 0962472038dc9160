/**
 * The Sendcash checkout script, in the spirit of the reference: `Transfers.init({siteName, siteUrl, siteLogo,
 * publicKey})`, then `Transfers.charge({signature, amount, userId, destinationAccountNumber, destinationBankCode,
 * transactionReference, name?})`, which creates the charge and opens the payer page. `charge` returns a Promise of
 * the charge; `onClose`/`onSuccess` callbacks hear the payer page's outcome.
 */
export const CHECKOUT_SCRIPT = `(function () {
  var base = '__CASHWIRE_BASE__';
  var config = null;
  function fail(msg) { console.error('[Transfers] ' + msg); return Promise.reject(new Error(msg)); }
  window.Transfers = {
    init: function (opts) {
      if (!opts || typeof opts.publicKey !== 'string' || !opts.publicKey) { console.error('[Transfers] init needs publicKey'); return false; }
      config = { siteName: opts.siteName || '', siteUrl: opts.siteUrl || '', siteLogo: opts.siteLogo || '', publicKey: opts.publicKey, baseUrl: opts.baseUrl || base };
      return true;
    },
    charge: function (o) {
      if (!config) return fail('call Transfers.init first');
      if (!o || !o.signature || !o.amount || !o.userId || !o.destinationAccountNumber || !o.destinationBankCode || !(o.transactionReference || o.paymentReference)) {
        return fail('charge needs signature, amount, userId, destinationAccountNumber, destinationBankCode and transactionReference');
      }
      var body = { publicKey: config.publicKey, signature: o.signature, amount: o.amount, userId: o.userId,
        destinationAccountNumber: o.destinationAccountNumber, destinationBankCode: o.destinationBankCode,
        transactionReference: o.transactionReference || o.paymentReference, name: o.name, description: o.description };
      var popup = o.redirect ? null : window.open('', 'cashwire-transfers', 'width=480,height=720');
      return fetch(config.baseUrl + '/sendcash/charges', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { if (!r.ok) { throw new Error((j.error && j.error.message) || ('charge failed: ' + r.status)); } return j; }); })
        .then(function (charge) {
          if (charge.payerUrl) {
            if (o.redirect) window.location.assign(charge.payerUrl);
            else if (popup) popup.location.href = charge.payerUrl;
            else window.location.assign(charge.payerUrl);
          } else if (popup) { popup.close(); }
          // Only the payer page (Cashwire's origin) speaks for the outcome, once; any other window could post the same shape.
          var origin = new URL(config.baseUrl, window.location.href).origin;
          window.addEventListener('message', function onMessage(e) {
            if (e.origin !== origin || !e.data || e.data.source !== 'cashwire-sendcash' || e.data.reference !== charge.reference) return;
            window.removeEventListener('message', onMessage);
            if (e.data.status === 'Completed' && o.onSuccess) o.onSuccess(e.data);
            if (o.onClose) o.onClose(e.data);
          });
          return charge;
        })
        .catch(function (err) { if (popup) popup.close(); console.error('[Transfers] ' + err.message); throw err; });
    }
  };
})();
`;
