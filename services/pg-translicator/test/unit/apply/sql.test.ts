import { expect } from 'chai';
import { deleteRow, insertRows, truncateTables, updateRow, type ColumnRef } from '../../../src/apply/sql.js';

const table = { schema: 'Sales', name: 'order "items"' };
const columns: ColumnRef[] = [
  { name: 'id', typeName: 'bigint' },
  { name: 'Note', typeName: 'text' },
  { name: 'doc', typeName: 'json' },
];

describe('SQL for applying changes', () => {
  it('quotes identifiers and passes values as parameters in a multi-row insert', () => {
    const statement = insertRows(table, columns, [
      ['1', "it's", null],
      ['2', '$1; DROP TABLE x', '{}'],
    ]);
    expect(statement.text).to.equal(
      'INSERT INTO "Sales"."order ""items""" ("id", "Note", "doc") VALUES ($1, $2, $3), ($4, $5, $6)',
    );
    expect(statement.values).to.deep.equal(['1', "it's", null, '2', '$1; DROP TABLE x', '{}']);
  });

  it('leaves unchanged-TOAST columns out of the SET list', () => {
    const statement = updateRow(table, columns, ['1', undefined, '{"a":1}'], {
      columns: [columns[0]!],
      values: ['1'],
      full: false,
    });
    expect(statement?.text).to.equal(
      'UPDATE "Sales"."order ""items""" SET "id" = $1, "doc" = $2 WHERE "id" = $3',
    );
    expect(statement?.values).to.deep.equal(['1', '{"a":1}', '1']);
  });

  it('finds a row by its old key when the key changed', () => {
    const statement = updateRow(table, columns, ['2', 'x', null], {
      columns: [columns[0]!],
      values: ['1'],
      full: false,
    });
    expect(statement?.text).to.match(/WHERE "id" = \$4$/);
    expect(statement?.values.at(-1)).to.equal('1');
  });

  it('matches NULLs and types without equality in a FULL identity row, changing exactly one row', () => {
    const statement = deleteRow(table, { columns, values: ['7', null, '{"k": 1}'], full: true });
    expect(statement.text).to.equal(
      'DELETE FROM "Sales"."order ""items""" WHERE ctid = (SELECT ctid FROM "Sales"."order ""items""" WHERE "id" = $1 AND "Note" IS NULL AND "doc"::text = ($2::json)::text LIMIT 1)',
    );
    expect(statement.values).to.deep.equal(['7', '{"k": 1}']);
  });

  it('returns nothing to do when every column is unchanged TOAST', () => {
    expect(
      updateRow(table, columns, [undefined, undefined, undefined], { columns, values: ['1'], full: false }),
    ).to.equal(undefined);
  });

  it('inserts rows of a table without columns with DEFAULT VALUES', () => {
    expect(insertRows({ schema: 'public', name: 'empty' }, [], [[], []]).text).to.equal(
      'INSERT INTO "public"."empty" DEFAULT VALUES; INSERT INTO "public"."empty" DEFAULT VALUES',
    );
  });

  it('truncates several tables with the source’s options', () => {
    expect(truncateTables([table, { schema: 'public', name: 'a' }], true, true).text).to.equal(
      'TRUNCATE "Sales"."order ""items""", "public"."a" RESTART IDENTITY CASCADE',
    );
    expect(truncateTables([{ schema: 'public', name: 'a' }], false, false).text).to.equal(
      'TRUNCATE "public"."a"',
    );
  });
});
