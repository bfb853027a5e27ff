#!/usr/bin/env node
// Example MCP server: a fake payment processor (no money moves anywhere).
//   get_charge {charge_id}
//   refund     {charge_id, amount, currency, reason}
// Run: node examples/servers/payments.js            (stdio)
//      node examples/servers/payments.js --http 9002 (Streamable HTTP at /mcp)
import { z } from 'zod';

import { runServer, text } from './lib/harness.js';

// Module-level so refunds persist across stateless HTTP requests.
const charges = new Map([
  ['ch_1001', { id: 'ch_1001', amount: 120, currency: 'EUR', refunded: 0, customer: 'ada@example.com' }],
  ['ch_1002', { id: 'ch_1002', amount: 19.99, currency: 'USD', refunded: 0, customer: 'grace@example.com' }],
  ['ch_1003', { id: 'ch_1003', amount: 2500, currency: 'USD', refunded: 0, customer: 'katherine@example.com' }],
]);
let nextRefund = 1;

const chargeId = z.string().regex(/^ch_[0-9]+$/).describe('Charge id, e.g. ch_1001');

await runServer({
  name: 'payments',
  defineTools(register) {
    register(
      'get_charge',
      {
        title: 'Get a charge',
        description: 'Look up a charge: amount, currency, and how much has been refunded.',
        inputSchema: { charge_id: chargeId },
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
      async ({ charge_id }) => {
        const charge = charges.get(charge_id);
        return charge ? text(charge) : text(`no charge ${charge_id}`, true);
      },
    );
    register(
      'refund',
      {
        title: 'Refund a charge',
        description: 'Refund part or all of a charge to the customer.',
        inputSchema: {
          charge_id: chargeId,
          amount: z.number().positive().describe('Amount to refund, in the charge currency'),
          currency: z.enum(['EUR', 'USD', 'GBP']),
          reason: z.string().describe('Why the refund is issued (shown to the customer)'),
        },
        annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
      },
      async ({ charge_id, amount, currency, reason }) => {
        const charge = charges.get(charge_id);
        if (!charge) return text(`no charge ${charge_id}`, true);
        if (currency !== charge.currency) return text(`charge ${charge_id} is in ${charge.currency}, not ${currency}`, true);
        const left = Math.round((charge.amount - charge.refunded) * 100) / 100;
        if (amount > left) return text(`cannot refund ${amount} ${currency}: only ${left} left on ${charge_id}`, true);
        charge.refunded = Math.round((charge.refunded + amount) * 100) / 100;
        return text({ refund_id: `re_${nextRefund++}`, charge_id, amount, currency, reason, status: 'succeeded' });
      },
    );
  },
});
