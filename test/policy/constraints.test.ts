/**
 * Every operator of SPEC §4, table-driven, including the attack inputs the
 * issue names. Each row is [description, constraint, args, expected pass].
 */
import { describe, expect, it } from 'vitest';

import { CapframeError } from '../../src/errors.js';
import { compileConstraints, type Constraint } from '../../src/policy/index.js';
import { ConstraintSet } from '../../src/policy/constraints.js';

type Row = [string, Constraint, unknown, boolean];

const ROWS: Row[] = [
  // == and != : same type only
  ['== string equal', { arg: 'to', op: '==', value: 'a@example.com' }, { to: 'a@example.com' }, true],
  ['== string differs', { arg: 'to', op: '==', value: 'a@example.com' }, { to: 'x@evil.com' }, false],
  ['== list-wrapped value', { arg: 'to', op: '==', value: 'a@example.com' }, { to: ['a@example.com'] }, false],
  ['== object-wrapped value', { arg: 'to', op: '==', value: 'a@example.com' }, { to: { v: 'a@example.com' } }, false],
  ['== number equal', { arg: 'n', op: '==', value: 5 }, { n: 5 }, true],
  ['== numeric string vs number', { arg: 'n', op: '==', value: 5 }, { n: '5' }, false],
  ['== boolean vs number', { arg: 'b', op: '==', value: true }, { b: 1 }, false],
  ['== boolean equal', { arg: 'b', op: '==', value: false }, { b: false }, true],
  ['== missing', { arg: 'to', op: '==', value: 'a' }, {}, false],
  ['!= differs', { arg: 'to', op: '!=', value: 'x@evil.com' }, { to: 'a@example.com' }, true],
  ['!= equal', { arg: 'to', op: '!=', value: 'x@evil.com' }, { to: 'x@evil.com' }, false],
  ['!= list-wrapped value (the attack)', { arg: 'to', op: '!=', value: 'x@evil.com' }, { to: ['x@evil.com'] }, false],
  ['!= object-wrapped value', { arg: 'to', op: '!=', value: 'x@evil.com' }, { to: { a: 'x@evil.com' } }, false],
  ['!= numeric string vs number', { arg: 'n', op: '!=', value: 5 }, { n: '6' }, false],
  ['!= null', { arg: 'to', op: '!=', value: 'x' }, { to: null }, false],
  ['!= missing', { arg: 'to', op: '!=', value: 'x' }, {}, false],
  // ordering: numbers only
  ['< below', { arg: 'amount', op: '<', value: 50 }, { amount: 49.99 }, true],
  ['< equal', { arg: 'amount', op: '<', value: 50 }, { amount: 50 }, false],
  ['<= equal', { arg: 'amount', op: '<=', value: 50 }, { amount: 50 }, true],
  ['<= above', { arg: 'amount', op: '<=', value: 50 }, { amount: 50.000001 }, false],
  ['<= numeric string', { arg: 'amount', op: '<=', value: 50 }, { amount: '10' }, false],
  ['<= numeric string (big)', { arg: 'amount', op: '<=', value: 50 }, { amount: '5000' }, false],
  ['<= list-wrapped number', { arg: 'amount', op: '<=', value: 50 }, { amount: [10] }, false],
  ['<= object-wrapped number', { arg: 'amount', op: '<=', value: 50 }, { amount: { value: 10 } }, false],
  ['<= boolean', { arg: 'amount', op: '<=', value: 50 }, { amount: false }, false],
  ['<= null', { arg: 'amount', op: '<=', value: 50 }, { amount: null }, false],
  ['<= NaN from a JS caller', { arg: 'amount', op: '<=', value: 50 }, { amount: Number.NaN }, false],
  ['<= -Infinity from a JS caller', { arg: 'amount', op: '<=', value: 50 }, { amount: -Infinity }, false],
  ['<= missing', { arg: 'amount', op: '<=', value: 50 }, {}, false],
  ['> above', { arg: 'amount', op: '>', value: 0 }, { amount: 0.01 }, true],
  ['> equal', { arg: 'amount', op: '>', value: 0 }, { amount: 0 }, false],
  ['>= equal', { arg: 'id', op: '>=', value: 1 }, { id: 1 }, true],
  ['>= below', { arg: 'id', op: '>=', value: 1 }, { id: 0 }, false],
  ['>= numeric string', { arg: 'id', op: '>=', value: 1 }, { id: '2' }, false],
  // in / not_in: strict equality, same type
  ['in member', { arg: 'cur', op: 'in', value: ['EUR', 'USD'] }, { cur: 'EUR' }, true],
  ['in non-member', { arg: 'cur', op: 'in', value: ['EUR', 'USD'] }, { cur: 'JPY' }, false],
  ['in case differs', { arg: 'cur', op: 'in', value: ['EUR', 'USD'] }, { cur: 'eur' }, false],
  ['in list-wrapped member', { arg: 'cur', op: 'in', value: ['EUR', 'USD'] }, { cur: ['EUR'] }, false],
  ['in numbers, numeric string', { arg: 'n', op: 'in', value: [1, 2, 3] }, { n: '2' }, false],
  ['in numbers, member', { arg: 'n', op: 'in', value: [1, 2, 3] }, { n: 2 }, true],
  ['in mixed list, boolean', { arg: 'n', op: 'in', value: [1, 'a', true] }, { n: true }, true],
  ['in mixed list, 1 is not true', { arg: 'n', op: 'in', value: [true] }, { n: 1 }, false],
  ['not_in non-member', { arg: 'to', op: 'not_in', value: ['x@evil.com'] }, { to: 'a@example.com' }, true],
  ['not_in member', { arg: 'to', op: 'not_in', value: ['x@evil.com'] }, { to: 'x@evil.com' }, false],
  ['not_in list-wrapped member (the attack)', { arg: 'to', op: 'not_in', value: ['x@evil.com'] }, { to: ['x@evil.com'] }, false],
  ['not_in object-wrapped member', { arg: 'to', op: 'not_in', value: ['x@evil.com'] }, { to: { to: 'x@evil.com' } }, false],
  ['not_in number against string list', { arg: 'to', op: 'not_in', value: ['x'] }, { to: 5 }, false],
  ['not_in missing', { arg: 'to', op: 'not_in', value: ['x'] }, {}, false],
  // matches / not_matches: strings only, u flag, as written (no implicit anchors)
  ['matches anchored', { arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }, { sql: '  SELECT 1' }, true],
  ['matches anchored, no match', { arg: 'sql', op: 'matches', value: '^\\s*SELECT\\b' }, { sql: 'DELETE FROM t' }, false],
  ['matches unanchored finds inside', { arg: 'sql', op: 'matches', value: 'SELECT' }, { sql: 'x SELECT y' }, true],
  ['matches list-wrapped', { arg: 'sql', op: 'matches', value: '^SELECT' }, { sql: ['SELECT 1'] }, false],
  ['matches number', { arg: 'n', op: 'matches', value: '^[0-9]+$' }, { n: 123 }, false],
  ['matches unicode property (u flag)', { arg: 's', op: 'matches', value: '^\\p{Lu}+$' }, { s: 'ÄB' }, true],
  ['matches astral char is one code point (u flag)', { arg: 's', op: 'matches', value: '^.$' }, { s: '😀' }, true],
  ['not_matches clean', { arg: 'sql', op: 'not_matches', value: ';\\s*\\S' }, { sql: 'SELECT 1;' }, true],
  ['not_matches stacked statement', { arg: 'sql', op: 'not_matches', value: ';\\s*\\S' }, { sql: 'SELECT 1; DROP TABLE t' }, false],
  ['not_matches list-wrapped', { arg: 'sql', op: 'not_matches', value: 'DROP' }, { sql: ['DROP TABLE t'] }, false],
  ['not_matches missing', { arg: 'sql', op: 'not_matches', value: 'DROP' }, {}, false],
  // starts_with / contains: strings only
  ['starts_with yes', { arg: 'id', op: 'starts_with', value: 'ch_' }, { id: 'ch_1' }, true],
  ['starts_with no', { arg: 'id', op: 'starts_with', value: 'ch_' }, { id: 're_1' }, false],
  ['starts_with list-wrapped', { arg: 'id', op: 'starts_with', value: 'ch_' }, { id: ['ch_1'] }, false],
  ['contains yes', { arg: 'q', op: 'contains', value: 'needle' }, { q: 'haystack needle hay' }, true],
  ['contains no', { arg: 'q', op: 'contains', value: 'needle' }, { q: 'haystack' }, false],
  ['contains does not search lists', { arg: 'q', op: 'contains', value: 'needle' }, { q: ['needle'] }, false],
  ['contains number', { arg: 'q', op: 'contains', value: '1' }, { q: 1 }, false],
  // max_length: code points for strings, items for lists
  ['max_length short', { arg: 's', op: 'max_length', value: 3 }, { s: 'abc' }, true],
  ['max_length long', { arg: 's', op: 'max_length', value: 3 }, { s: 'abcd' }, false],
  ['max_length counts code points not UTF-16 units', { arg: 's', op: 'max_length', value: 3 }, { s: '😀😀😀' }, true],
  ['max_length 4 astral chars over 3', { arg: 's', op: 'max_length', value: 3 }, { s: '😀😀😀😀' }, false],
  ['max_length list ok', { arg: 's', op: 'max_length', value: 2 }, { s: [1, 2] }, true],
  ['max_length list long', { arg: 's', op: 'max_length', value: 2 }, { s: [1, 2, 3] }, false],
  ['max_length number', { arg: 's', op: 'max_length', value: 2 }, { s: 5 }, false],
  ['max_length object', { arg: 's', op: 'max_length', value: 2 }, { s: {} }, false],
  ['max_length zero, empty string', { arg: 's', op: 'max_length', value: 0 }, { s: '' }, true],
  // path_within
  ['path inside', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/a/b.txt' }, true],
  ['path equal to root', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app' }, true],
  ['path root with trailing slash', { arg: 'p', op: 'path_within', value: '/srv/app/' }, { p: '/srv/app/x' }, true],
  ['path dotdot escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/../etc/passwd' }, false],
  ['path dotdot inside', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/a/../b' }, true],
  ['path %2e%2e escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%2e%2e/etc/passwd' }, false],
  ['path %2E%2E escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%2E%2E/etc' }, false],
  ['path %2f-encoded escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/x%2f..%2f..%2fetc' }, false],
  ['path double-encoded %252e', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%252e%252e/etc' }, false],
  ['path encoded only as written (ap%70)', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/ap%70/x' }, false],
  ['path invalid escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%zz' }, false],
  ['path invalid UTF-8 escape', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%ff' }, false],
  ['path encoded space inside', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/my%20file' }, true],
  ['path // at the start', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '//etc/passwd' }, false],
  ['path // inside', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv//app///x' }, true],
  ['path sibling prefix', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app-shadow/x' }, false],
  ['path sibling prefix, exact', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app-shadow' }, false],
  ['path parent', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv' }, false],
  ['path relative', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: 'srv/app/x' }, false],
  ['path dot relative', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: './x' }, false],
  ['path empty', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '' }, false],
  ['path NUL', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/a\0b' }, false],
  ['path encoded NUL', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/a%00b' }, false],
  ['path backslash', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/..\\..\\etc' }, false],
  ['path encoded backslash', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: '/srv/app/%5c..' }, false],
  ['path list-wrapped', { arg: 'p', op: 'path_within', value: '/srv/app' }, { p: ['/srv/app/x'] }, false],
  ['path missing', { arg: 'p', op: 'path_within', value: '/srv/app' }, {}, false],
  ['path root "/" admits any absolute path', { arg: 'p', op: 'path_within', value: '/' }, { p: '/etc/x' }, true],
  // url_origin_in
  ['url listed origin', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com/v1?q=1#f' }, true],
  ['url listed origin, default port', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com:443/' }, true],
  ['url listed with port', { arg: 'u', op: 'url_origin_in', value: ['http://localhost:8080'] }, { u: 'http://localhost:8080/x' }, true],
  ['url userinfo trick', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com@evil.com' }, false],
  ['url userinfo on the real host', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://user:pw@api.example.com/' }, false],
  ['url empty userinfo', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://@api.example.com/' }, false],
  ['url suffix trick', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com.evil.com/' }, false],
  ['url trailing dot host', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com./' }, false],
  ['url cyrillic homograph', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://аpi.example.com/' }, false],
  ['url xn-- host', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://xn--pi-7kc.example.com/' }, false],
  ['url fullwidth host folds to listed ASCII', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://ａｐｉ.example.com/' }, false],
  ['url percent-encoded host', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://%61pi.example.com/' }, false],
  ['url IDN listed verbatim', { arg: 'u', op: 'url_origin_in', value: ['https://bücher.example'] }, { u: 'https://bücher.example/x' }, true],
  ['url IDN listed, punycode form', { arg: 'u', op: 'url_origin_in', value: ['https://bücher.example'] }, { u: 'https://xn--bcher-kva.example/' }, true],
  ['url other scheme', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'http://api.example.com/' }, false],
  ['url other port', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com:444/' }, false],
  ['url backslash', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.example.com\\@evil.com/' }, false],
  ['url tab inside', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https://api.exa\tmple.com/' }, false],
  ['url leading space', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: ' https://api.example.com/' }, false],
  ['url no slashes', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https:api.example.com' }, false],
  ['url three slashes', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'https:///api.example.com' }, false],
  ['url javascript:', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'javascript:alert(1)' }, false],
  ['url not a URL', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: 'api.example.com' }, false],
  ['url list-wrapped', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, { u: ['https://api.example.com/'] }, false],
  ['url missing', { arg: 'u', op: 'url_origin_in', value: ['https://api.example.com'] }, {}, false],
  // url_path_within: WHATWG parse, unreserved escapes decoded, dot segments removed, `/` boundary;
  // a path that servers read differently (encoded separators, ;params, //, case) is not judged.
  ...(
    [
      ['url path equal to the prefix', 'https://h.example/api', true],
      ['url path with trailing slash', 'https://h.example/api/', true],
      ['url path under the prefix', 'https://h.example/api/v1/items?q=/../admin#/../x', true],
      ['url path sibling prefix', 'https://h.example/api-internal/x', false],
      ['url path parent', 'https://h.example/', false],
      ['url path no path at all', 'https://h.example', false],
      ['url path encoded unreserved (%61pi)', 'https://h.example/%61pi/x', true],
      ['url path encoded unreserved, uppercase hex', 'https://h.example/%41PI/x', false],
      ['url path %2e%2e escape', 'https://h.example/api/%2e%2e/admin', false],
      ['url path dotdot escape', 'https://h.example/api/../admin', false],
      ['url path trailing dotdot', 'https://h.example/api/..', false],
      ['url path trailing dot', 'https://h.example/api/.', true],
      ['url path dotdot inside', 'https://h.example/api/a/../b', true],
      ['url path encoded slash dotdot (..%2f)', 'https://h.example/api/..%2fadmin', false],
      ['url path encoded slash dotdot (%2e%2e%2f)', 'https://h.example/api/%2e%2e%2Fadmin', false],
      ['url path encoded backslash dotdot', 'https://h.example/api/..%5cadmin', false],
      ['url path encoded slash inside a segment', 'https://h.example/api/a%2Fb', true],
      ['url path double-encoded dotdot', 'https://h.example/api/%252e%252e/admin', false],
      ['url path malformed escape', 'https://h.example/api/%zz', false],
      ['url path encoded NUL', 'https://h.example/api%00', false],
      ['url path encoded NUL in a segment', 'https://h.example/api/a%00b', false],
      ['url path uppercase', 'https://h.example/API/x', false],
      ['url path mixed case below the prefix', 'https://h.example/api/V1/Items', true],
      ['url path double slash before', 'https://h.example//api/x', false],
      ['url path double slash below', 'https://h.example/api//x', true],
      ['url path ;params on the prefix segment', 'https://h.example/api;x/y', false],
      ['url path ..;/ (Tomcat)', 'https://h.example/api/..;/admin', false],
      // The URL parser resolves these before any other reading could see them; the path as written is read too.
      ['url path ..;/../ (the parser pops "..;", Tomcat strips ";" first)', 'https://h.example/api/x/..;/../admin', false],
      ['url path //../ (the parser pops the empty segment, nginx merges first)', 'https://h.example/api/x//../../admin', false],
      ['url path %2e%2e;/../ as written', 'https://h.example/api/x/%2e%2e;/../admin', false],
      ['url path dot segments that resolve inside either way', 'https://h.example/api/x/../y', true],
      ['url path non-ASCII below', 'https://h.example/api/bücher', true],
      ['url path fullwidth letter (NFKC reads ａpi as api)', 'https://h.example/ａpi/x', false],
      ['url path fullwidth solidus dotdot (NFKC)', 'https://h.example/api/..／admin', false],
      ['url path fullwidth full stops (NFKC ．． is ..)', 'https://h.example/api/．．/admin', false],
      ['url path dotless i (upper-cases to I)', 'https://h.example/apı/x', false],
      ['url path encoded C1 control', 'https://h.example/api/%C2%85', false],
      ['url path encoded line separator', 'https://h.example/api/a%E2%80%A8b', false],
      ['url path invalid UTF-8 below', 'https://h.example/api/%FF', true],
      ['url path raw backslash', 'https://h.example/api\\..\\admin', false],
      ['url path tab', 'https://h.example/api/\t../admin', false],
      ['url path userinfo', 'https://u@h.example/api', false],
      ['url path relative reference', '/api/x', false],
      ['url path scheme-relative', '//h.example/api/x', false],
      ['url path other scheme', 'ftp://h.example/api/x', false],
      ['url path javascript:', 'javascript:/api/x', false],
    ] as const
  ).map(([name, u, pass]): Row => [name, { arg: 'u', op: 'url_path_within', value: '/api' }, { u }, pass]),
  ['url path number', { arg: 'u', op: 'url_path_within', value: '/api' }, { u: 5 }, false],
  ['url path list-wrapped', { arg: 'u', op: 'url_path_within', value: '/api' }, { u: ['https://h.example/api'] }, false],
  ['url path object-wrapped', { arg: 'u', op: 'url_path_within', value: '/api' }, { u: { href: 'https://h.example/api' } }, false],
  ['url path missing', { arg: 'u', op: 'url_path_within', value: '/api' }, {}, false],
  ['url path prefix "/" admits any http(s) URL', { arg: 'u', op: 'url_path_within', value: '/' }, { u: 'https://h.example/x/y' }, true],
  ['url path prefix with trailing slash', { arg: 'u', op: 'url_path_within', value: '/api/' }, { u: 'https://h.example/api' }, true],
  ['url path deeper prefix', { arg: 'u', op: 'url_path_within', value: '/api/v1' }, { u: 'https://h.example/api/v1/../v2' }, false],
  ['url path uppercase prefix, lowercase path', { arg: 'u', op: 'url_path_within', value: '/API' }, { u: 'https://h.example/api' }, false],
  ['url path uppercase prefix, exact', { arg: 'u', op: 'url_path_within', value: '/API' }, { u: 'https://h.example/API/x' }, true],
  // absent
  ['absent when missing', { arg: 'cc', op: 'absent' }, { to: 'a' }, true],
  ['absent with no arguments at all', { arg: 'cc', op: 'absent' }, undefined, true],
  ['absent, intermediate key missing', { arg: 'opts.cc', op: 'absent' }, {}, true],
  ['absent when present', { arg: 'cc', op: 'absent' }, { cc: 'x' }, false],
  ['absent when null', { arg: 'cc', op: 'absent' }, { cc: null }, false],
  ['absent when a list sits on the path', { arg: 'opts.cc', op: 'absent' }, { opts: [{ cc: 'x' }] }, false],
  ['absent when a scalar sits on the path', { arg: 'opts.cc', op: 'absent' }, { opts: 'x' }, false],
  // dotted paths: plain objects only, own keys only
  ['nested path found', { arg: 'filter.owner', op: '==', value: 'me' }, { filter: { owner: 'me' } }, true],
  ['nested path through a list', { arg: 'filter.owner', op: '==', value: 'me' }, { filter: [{ owner: 'me' }] }, false],
  ['extra nesting level', { arg: 'amount', op: '<=', value: 50 }, { amount: { amount: 10 } }, false],
  ['nesting moved down a level', { arg: 'amount', op: '<=', value: 50 }, { args: { amount: 10 } }, false],
  ['inherited key is not an argument', { arg: 'toString', op: 'absent' }, {}, true],
  ['args not an object', { arg: 'a', op: '==', value: 'x' }, 'x', false],
  ['args a list', { arg: '0', op: '==', value: 'x' }, ['x'], false],
];

describe('constraint operators (table)', () => {
  it.each(ROWS)('%s', (_name, constraint, args, pass) => {
    const compiled = compileConstraints([constraint]);
    const result = compiled.check(args);
    expect(result.ok).toBe(pass);
    if (!result.ok) {
      // The reason names the argument and the operator.
      expect(result.reason).toContain(constraint.arg);
      expect(result.reason).toContain(constraint.op);
    }
  });

  it('covers every operator', () => {
    const ops = new Set(ROWS.map((r) => r[1].op));
    expect([...ops].sort()).toEqual(
      ['==', '!=', '<', '<=', '>', '>=', 'in', 'not_in', 'matches', 'not_matches', 'starts_with', 'contains', 'max_length', 'path_within', 'url_origin_in', 'url_path_within', 'absent'].sort(),
    );
  });
});

describe('deny-rule evaluation (holdsForDeny)', () => {
  const rows: [string, Constraint, unknown, boolean][] = [
    ['clear pass holds', { arg: 'amount', op: '>', value: 1000 }, { amount: 5000 }, true],
    ['clear fail does not hold', { arg: 'amount', op: '>', value: 1000 }, { amount: 5 }, false],
    ['type mismatch holds (fail closed)', { arg: 'amount', op: '>', value: 1000 }, { amount: '5000' }, true],
    ['missing argument holds (fail closed)', { arg: 'amount', op: '>', value: 1000 }, {}, true],
    ['list-wrapped holds (fail closed)', { arg: 'to', op: '==', value: 'x@evil.com' }, { to: ['x@evil.com'] }, true],
    ['ambiguous encoded path holds', { arg: 'p', op: 'path_within', value: '/srv/app/config' }, { p: '/srv/app/data/%2e%2e/config/x' }, true],
    ['path clearly outside does not hold', { arg: 'p', op: 'path_within', value: '/srv/app/config' }, { p: '/srv/app/data/x' }, false],
    ['unjudgeable URL holds', { arg: 'u', op: 'url_origin_in', value: ['https://evil.com'] }, { u: 'https://a@b.com' }, true],
    ['url path inside holds', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/admin/users' }, true],
    ['url path %61dmin holds (the substring bypass)', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/%61dmin/users' }, true],
    ['url path /ADMIN holds (a case-insensitive server routes it to /admin)', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/ADMIN' }, true],
    ['url path //admin holds (a slash-merging server routes it to /admin)', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example//admin' }, true],
    ['url path /x/..%2fadmin holds', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/x/..%2fadmin' }, true],
    ['url path /admin;x holds', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/admin;x/users' }, true],
    ['url path in a list holds', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: ['https://h.example/x'] }, true],
    ['url path fullwidth ａdmin holds (a server that applies NFKC routes it to /admin)', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/ａdmin' }, true],
    ['url path Kelvin sign holds (lower-cases to k)', { arg: 'u', op: 'url_path_within', value: '/kiosk' }, { u: 'https://h.example/\u212Aiosk' }, true],
    ['url path clearly outside does not hold', { arg: 'u', op: 'url_path_within', value: '/admin' }, { u: 'https://h.example/administrator' }, false],
    ['absent: present does not hold', { arg: 'x', op: 'absent' }, { x: 1 }, false],
  ];
  it.each(rows)('%s', (_name, constraint, args, holds) => {
    const compiled = compileConstraints([constraint]);
    expect(compiled).toBeInstanceOf(ConstraintSet);
    expect(compiled.holdsForDeny(args)).toBe(holds);
  });
});

describe('check()', () => {
  it('needs every constraint and reports the first failure', () => {
    const c = compileConstraints([
      { arg: 'amount', op: '>', value: 0 },
      { arg: 'amount', op: '<=', value: 50 },
      { arg: 'currency', op: 'in', value: ['EUR'] },
    ]);
    expect(c.check({ amount: 10, currency: 'EUR' })).toEqual({ ok: true });
    expect(c.check({ amount: 60, currency: 'EUR' })).toEqual({ ok: false, reason: 'amount <= 50: does not hold' });
    expect(c.check({ amount: '10', currency: 'EUR' })).toEqual({ ok: false, reason: 'amount > 0: expected a number, got a string' });
    expect(c.check({ currency: 'EUR' })).toEqual({ ok: false, reason: 'amount > 0: argument "amount" is missing' });
    expect(c.check({ amount: 10, currency: ['EUR'] })).toEqual({ ok: false, reason: 'currency in ["EUR"]: expected a string, got a list' });
  });

  it('never puts the argument value in the reason', () => {
    const c = compileConstraints([{ arg: 'token', op: '==', value: 'expected' }]);
    const r = c.check({ token: 'sk_live_SECRET' });
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain('SECRET');
  });

  it('an empty or undefined list always passes', () => {
    expect(compileConstraints([]).check({ anything: 1 })).toEqual({ ok: true });
    expect(compileConstraints(undefined).check(undefined)).toEqual({ ok: true });
  });

  it('keeps the raw source, frozen, for the token "when" claim', () => {
    const raw = [
      { arg: 'amount', op: '<=', value: 50 },
      { arg: 'cc', op: 'absent' },
      { arg: 'cur', op: 'in', value: ['EUR', 'USD'] },
    ];
    const c = compileConstraints(raw);
    expect(c.source).toEqual(raw);
    expect(Object.isFrozen(c.source[2]?.value)).toBe(true);
    raw[0]!.value = 5000;
    expect(c.source[0]?.value).toBe(50);
  });

  it('is stateless across calls (no regex lastIndex carry-over)', () => {
    const c = compileConstraints([{ arg: 's', op: 'matches', value: '^a' }]);
    for (let i = 0; i < 5; i++) expect(c.check({ s: 'abc' }).ok).toBe(true);
  });
});

describe('compileConstraints validation', () => {
  const bad: [string, unknown, string][] = [
    ['not a list', { arg: 'a', op: '==', value: 1 }, 'when: expected a list of constraints ({arg, op, value}), got a mapping'],
    ['entry not a mapping', ['a'], 'when[0]: expected a constraint mapping {arg, op, value}, got a string'],
    ['unknown operator', [{ arg: 'a', op: '=~', value: 'x' }], 'when[0].op: unknown operator "=~"; expected one of == != < <= > >= in not_in matches not_matches starts_with contains max_length path_within url_origin_in url_path_within absent'],
    ['missing op', [{ arg: 'a', value: 'x' }], 'when[0]: constraint needs "op", got nothing'],
    ['unknown key', [{ arg: 'a', op: '==', value: 'x', flags: 'i' }], 'when[0].flags: unknown key "flags" in constraint; expected arg, op, value'],
    ['empty arg', [{ arg: '', op: '==', value: 'x' }], 'when[0].arg: arg must be a non-empty dotted path'],
    ['empty path segment', [{ arg: 'a..b', op: '==', value: 'x' }], 'when[0].arg: arg "a..b" has an empty segment'],
    ['arg not a string', [{ arg: 5, op: '==', value: 'x' }], 'when[0].arg: constraint needs "arg", a dotted path string'],
    ['missing value', [{ arg: 'a', op: '==' }], 'when[0]: == needs a "value"'],
    ['absent with value', [{ arg: 'a', op: 'absent', value: true }], 'when[0].value: absent takes no value'],
    ['== with a list', [{ arg: 'a', op: '==', value: ['x'] }], 'when[0].value: == needs a string, number or boolean value, got a list'],
    ['== with null', [{ arg: 'a', op: '==', value: null }], 'when[0].value: == needs a string, number or boolean value, got null'],
    ['< with a string', [{ arg: 'a', op: '<', value: '50' }], 'when[0].value: < needs a number value, got a string'],
    ['< with NaN', [{ arg: 'a', op: '<', value: Number.NaN }], 'when[0].value: < needs a number value, got a non-finite number'],
    ['in with a scalar', [{ arg: 'a', op: 'in', value: 'x' }], 'when[0].value: expected a non-empty list of strings, numbers or booleans, got a string'],
    ['in with an empty list', [{ arg: 'a', op: 'in', value: [] }], 'when[0].value: expected a non-empty list'],
    ['in with a nested list', [{ arg: 'a', op: 'not_in', value: ['x', ['y']] }], 'when[0].value[1]: expected a string, number or boolean, got a list'],
    ['invalid regex', [{ arg: 'a', op: 'matches', value: '(' }], 'when[0].value: invalid regular expression "(": /(/u: Unterminated group'],
    ['regex invalid only with u flag', [{ arg: 'a', op: 'matches', value: '\\-' }], 'when[0].value: invalid regular expression'],
    ['matches with a number', [{ arg: 'a', op: 'matches', value: 5 }], 'when[0].value: matches needs a regular expression string, got a number'],
    ['max_length negative', [{ arg: 'a', op: 'max_length', value: -1 }], 'when[0].value: max_length needs a non-negative integer, got -1'],
    ['max_length fractional', [{ arg: 'a', op: 'max_length', value: 1.5 }], 'when[0].value: max_length needs a non-negative integer, got 1.5'],
    ['path_within relative', [{ arg: 'a', op: 'path_within', value: 'srv/app' }], 'when[0].value: path_within expected an absolute POSIX path such as "/srv/app", got "srv/app"'],
    ['path_within with %', [{ arg: 'a', op: 'path_within', value: '/srv/%61pp' }], 'when[0].value: path_within root "/srv/%61pp" must not contain NUL, backslash or %'],
    ['url_origin_in scalar', [{ arg: 'a', op: 'url_origin_in', value: 'https://a.com' }], 'when[0].value: url_origin_in needs a non-empty list of origins'],
    ['url_origin_in with a path', [{ arg: 'a', op: 'url_origin_in', value: ['https://a.com/x'] }], 'when[0].value[0]: "https://a.com/x" has a path, query or fragment'],
    ['url_origin_in not a URL', [{ arg: 'a', op: 'url_origin_in', value: ['https://a.com', 'nope'] }], 'when[0].value[1]: "nope" is not an http(s) origin'],
    ['url_origin_in with userinfo', [{ arg: 'a', op: 'url_origin_in', value: ['https://u@a.com'] }], 'when[0].value[0]: "https://u@a.com" is not an http(s) origin'],
    ['url_origin_in ftp', [{ arg: 'a', op: 'url_origin_in', value: ['ftp://a.com'] }], 'when[0].value[0]: "ftp://a.com" is not an http(s) origin'],
    ['url_path_within a list', [{ arg: 'a', op: 'url_path_within', value: ['/api'] }], 'when[0].value: url_path_within needs a path prefix string such as "/api/v1", got a list'],
    ['url_path_within relative', [{ arg: 'a', op: 'url_path_within', value: 'api' }], 'when[0].value: url_path_within expected a path starting with "/" such as "/api/v1", got "api"'],
    ['url_path_within a whole URL', [{ arg: 'a', op: 'url_path_within', value: 'https://a.com/api' }], 'when[0].value: url_path_within takes a path such as "/api/v1", not a URL (got "https://a.com/api"); pin the origin with url_origin_in'],
    ['url_path_within with %', [{ arg: 'a', op: 'url_path_within', value: '/%61pi' }], 'when[0].value: url_path_within prefix "/%61pi" may contain only letters, digits'],
    ['url_path_within with ;', [{ arg: 'a', op: 'url_path_within', value: '/api;v=1' }], 'when[0].value: url_path_within prefix "/api;v=1" may contain only'],
    ['url_path_within with a query', [{ arg: 'a', op: 'url_path_within', value: '/api?x' }], 'when[0].value: url_path_within prefix "/api?x" may contain only'],
    ['url_path_within with a dot segment', [{ arg: 'a', op: 'url_path_within', value: '/api/../admin' }], 'when[0].value: url_path_within prefix "/api/../admin" has an empty, "." or ".." segment'],
    ['url_path_within with //', [{ arg: 'a', op: 'url_path_within', value: '/api//v1' }], 'when[0].value: url_path_within prefix "/api//v1" has an empty'],
  ];
  it.each(bad)('%s', (_name, list, message) => {
    let error: unknown;
    try {
      compileConstraints(list, 'when');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CapframeError);
    expect((error as CapframeError).code).toBe('invalid_policy');
    expect((error as CapframeError).message).toContain(message);
  });

  it('reports every bad constraint, one line each', () => {
    expect(() =>
      compileConstraints(
        [
          { arg: 'a', op: '=~', value: 1 },
          { arg: 'b', op: '<=', value: 5 },
          { arg: 'c', op: 'matches', value: '[' },
        ],
        'token when',
      ),
    ).toThrowError(/^token when\[0\]\.op: unknown operator "=~".*\ntoken when\[2\]\.value: invalid regular expression "\["/);
  });

  it('accepts token claims decoded from CBOR with a __proto__ key as data', () => {
    const raw = JSON.parse('[{"arg":"a","op":"==","value":"x","__proto__":{"polluted":true}}]') as unknown;
    expect(() => compileConstraints(raw, 'when')).toThrowError('when[0].__proto__: unknown key "__proto__"');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
