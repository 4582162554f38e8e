import { expect } from 'chai';
import {
  compileTemplate,
  TemplateSyntaxError,
  type TemplateValue,
} from '../../../src/transforms/template.js';

const ROW: Record<string, TemplateValue> = {
  first_name: 'Ann',
  last_name: "O'Brien",
  email: 'Ann.OBrien@Example.com',
  title: 'Héllo, World: 2024!',
  active: true,
  blocked: false,
  created_at: '2024-01-31 10:00:00+00',
  nick: null,
  'odd name': 'x',
};

const render = (source: string) => compileTemplate(source).render((column) => ROW[column] ?? null);

function syntaxError(source: string): TemplateSyntaxError {
  try {
    compileTemplate(source);
  } catch (error) {
    if (error instanceof TemplateSyntaxError) return error;
    throw error;
  }
  throw new Error('expected a syntax error');
}

describe('template language', () => {
  it('prints fields and pipes them through functions', () => {
    expect(render('{{.first_name | lower}}.{{.last_name | upper}}')).to.equal("ann.O'BRIEN");
    expect(render('{{.email | before "@" | lower}}')).to.equal('ann.obrien');
    expect(render('{{.email | after "@"}}')).to.equal('Example.com');
    expect(render('{{after "@" .email}}')).to.equal('Example.com');
    expect(render('{{.title | slugify}}')).to.equal('hello-world-2024');
    expect(render('{{.first_name | title}} {{"mARY ann" | title}}')).to.equal('Ann Mary Ann');
    expect(render('{{.created_at | year}}')).to.equal('2024');
    expect(render('{{.email | replace "." "_"}}')).to.equal('Ann_OBrien@Example_com');
    expect(render('{{.email | truncate 3}}|{{"  x " | trim}}|{{.first_name | len}}')).to.equal('Ann|x|3');
    expect(render('{{.nick | default "none"}}')).to.equal('none');
    expect(render('{{.email | after "#"}}|{{.email | before "#"}}')).to.equal('|Ann.OBrien@Example.com');
    expect(render('{{index . "odd name"}}')).to.equal('x');
    expect(render('{{(.first_name | upper) | lower}}')).to.equal('ann');
  });

  it('prints NULL as empty text and booleans as true/false', () => {
    expect(render('[{{.nick}}] {{.active}} {{.blocked}}')).to.equal('[] true false');
  });

  it('supports if, else if, else and the comparison functions', () => {
    expect(render('{{if .active}}on{{else}}off{{end}}')).to.equal('on');
    expect(render('{{if .blocked}}on{{else}}off{{end}}')).to.equal('off');
    expect(render('{{if .nick}}n{{else if eq .first_name "Ann"}}ann{{else}}other{{end}}')).to.equal('ann');
    expect(render('{{if and .active (not .blocked)}}ok{{end}}')).to.equal('ok');
    expect(render('{{if or .nick .blocked}}x{{else}}y{{end}}')).to.equal('y');
    expect(render('{{if ne .first_name "Bob"}}not bob{{end}}')).to.equal('not bob');
    expect(render('{{if .active}}{{if .blocked}}a{{else}}b{{end}}{{end}}')).to.equal('b');
  });

  it('supports comments, raw strings and whitespace trimming', () => {
    expect(render('a {{/* note */}} b')).to.equal('a  b');
    expect(render('a   {{- .first_name -}}   b')).to.equal('aAnnb');
    expect(render('{{`raw "x"`}}')).to.equal('raw "x"');
    expect(render('{{"tab\\tend"}}')).to.equal('tab\tend');
  });

  it('lists the columns it reads', () => {
    expect(
      compileTemplate('{{.a}} {{if .b}}{{.c | default .d}}{{end}} {{index . "e f"}}').fields,
    ).to.deep.equal(['a', 'b', 'c', 'd', 'e f']);
  });

  it('reports mistakes with their position', () => {
    const cases: [string, string][] = [
      ['{{.a | shout}}', 'unknown function shout'],
      ['x {{.a', 'unclosed action: missing }}'],
      ['{{if .a}}x', 'if without end'],
      ['{{end}}', 'unexpected end'],
      ['{{else}}', 'unexpected else'],
      ['{{range .a}}x{{end}}', 'range is not supported (supported: if, else, end)'],
      ['{{before "@"}}', 'before takes 2 argument(s), got 1'],
      ['{{.a .b}}', 'too many values; missing a function?'],
      ['{{.a | .b}}', 'only a function can follow |'],
      ['{{}}', 'empty action'],
      ['{{"open}}', 'unterminated string'],
      ['{{index . .a}}', 'use index as (index . "column name")'],
      ['{{.a | lower)}}', 'unexpected ")"'],
    ];
    for (const [source, reason] of cases) {
      const message = syntaxError(source).message;
      expect(message.startsWith(reason), `${source}: ${message}`).to.equal(true);
      expect(message).to.match(/ at character \d+ of the template$/);
    }
    expect(syntaxError('abc {{.a | shout}}').offset).to.equal(11);
  });
});
