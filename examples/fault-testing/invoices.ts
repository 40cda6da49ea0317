import { agent } from 'baton-actors';

/**
 * A small pipeline a user might own: parse an invoice line, then store it. This file is the
 * "production" code; invoices.test.ts fault-tests it with baton-actors/testkit.
 */
export interface Invoice {
  readonly id: string;
  readonly customer: string;
  readonly cents: number;
}

export interface Store {
  readonly rows: Map<string, Invoice>;
}

export function invoiceStages(store: Store) {
  const parse = agent({
    name: 'parse',
    handle: (line: string): Invoice => {
      const [id, customer, amount] = line.split(',');
      const cents = Math.round(Number(amount) * 100);
      if (!id || !customer || !Number.isFinite(cents)) throw new Error(`cannot parse '${line}'`);
      return { id, customer, cents };
    },
  });
  const save = agent({
    name: 'store',
    concurrency: 4,
    handle: async (invoice: Invoice): Promise<string> => {
      store.rows.set(invoice.id, invoice); // idempotent by id: a redo after a crash writes the same row
      return invoice.id;
    },
  });
  return [parse, save];
}
