/* The journey map report: draws every section from the embedded JSON as HTML and inline SVG.
   No library and no network: the page works from a file, offline. Key numbers are kept in data-*
   attributes so that tests and other tools can read them back. */
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('journey-data').textContent);
  var META = DATA.meta;
  var STAGES = META.stages.map(function (s) { return s.stage; });
  var SVGNS = 'http://www.w3.org/2000/svg';
  var STAGE_COLOURS = ['--s1', '--s2', '--s3', '--s4', '--s5', '--s6', '--s7'];
  var KIND_LABEL = {
    exits: 'drop-off',
    low_conversion_entry: 'low conversion',
    poor_scores: 'poor scores',
    abandonment_spike: 'abandonment spike'
  };
  var state = { dimension: 'all', segment: 'all', colourBy: 'exit_rate' };

  // ---------------------------------------------------------------------------------------------
  // Small helpers: element builders (text is always set as text, never parsed as HTML), formats.

  function append(node, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) { append(node, c); return; }
      node.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    });
    return node;
  }
  function setAttrs(node, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      node.setAttribute(k, v === true ? '' : String(v));
    });
    return node;
  }
  function h(tag, attrs) {
    return append(setAttrs(document.createElement(tag), attrs),
      Array.prototype.slice.call(arguments, 2));
  }
  function s(tag, attrs) {
    return append(setAttrs(document.createElementNS(SVGNS, tag), attrs),
      Array.prototype.slice.call(arguments, 2));
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
  }
  function stageColour(stage) {
    var i = STAGES.indexOf(stage);
    return i < 0 ? cssVar('--nostage') : cssVar(STAGE_COLOURS[i % STAGE_COLOURS.length]);
  }
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  var intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function fmtInt(v) { return isNum(v) ? intFmt.format(v).replace('-', '\u2212') : '\u2013'; }
  function fmtPct(v, digits) {
    if (!isNum(v)) return '\u2013';
    return (100 * v).toFixed(digits === undefined ? 1 : digits).replace('-', '\u2212') + '%';
  }
  function fmtNps(v) {
    if (!isNum(v)) return '\u2013';
    var r = Math.round(v);
    return (r > 0 ? '+' : '') + String(r).replace('-', '\u2212');
  }
  function fmtCsat(v) { return isNum(v) ? Math.round(v) + '%' : '\u2013'; }
  function fmtCes(v) { return isNum(v) ? v.toFixed(1) : '\u2013'; }
  function fmtMoney(v) {
    return isNum(v) ? new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 }).format(v) : '\u2013';
  }
  function svgRoot(id, width, height, label) {
    var root = clear(document.getElementById(id));
    var svg = s('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': label,
      'class': 'chart-svg', 'data-chart': id, preserveAspectRatio: 'xMidYMid meet' });
    root.appendChild(svg);
    return svg;
  }
  function title(text) { return s('title', {}, text); }

  // Colour ramps for the map cells: [r, g, b] stops interpolated linearly.
  function mix(a, b, t) {
    return [0, 1, 2].map(function (i) { return Math.round(a[i] + (b[i] - a[i]) * t); });
  }
  function ramp(stops, t) {
    t = Math.max(0, Math.min(1, t));
    var n = stops.length - 1, i = Math.min(n - 1, Math.floor(t * n));
    return mix(stops[i], stops[i + 1], t * n - i);
  }
  var RED = [200, 55, 45], PALE = [248, 246, 240], GREEN = [31, 138, 76], BLUE = [47, 95, 208];
  var WHITE = [255, 255, 255];
  var SCALES = {
    exit_rate: { label: 'exit rate', lo: 0, hi: 0.5, stops: [WHITE, [250, 200, 170], RED],
      fmt: function (v) { return fmtPct(v, 0); } },
    nps: { label: 'NPS', lo: -100, hi: 100, stops: [RED, PALE, GREEN], fmt: fmtNps },
    csat: { label: 'CSAT', lo: 0, hi: 100, stops: [RED, RED, PALE, GREEN], fmt: fmtCsat },
    ces: { label: 'CES (lower is easier)', lo: 1, hi: 7, stops: [GREEN, PALE, RED], fmt: fmtCes },
    journeys: { label: 'journeys', lo: 0, hi: 1, stops: [WHITE, BLUE], fmt: fmtInt }
  };
  function rgb(c) { return 'rgb(' + c.join(',') + ')'; }
  function textOn(c) { return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) < 140 ? '#fff' : '#1d2433'; }

  // ---------------------------------------------------------------------------------------------
  // Segment filter

  function dimensionInfo(name) {
    return META.dimensions.filter(function (d) { return d.name === name; })[0];
  }
  function fillSegments() {
    var select = clear(document.getElementById('segment'));
    dimensionInfo(state.dimension).segments.forEach(function (seg) {
      var n = DATA.segments[state.dimension][seg].totals.journeys;
      select.appendChild(h('option', { value: seg }, seg + ' (' + fmtInt(n) + ')'));
    });
    select.value = state.segment;
  }
  function readHash() {
    var params = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) params[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    var d = dimensionInfo(params.dimension);
    if (d) {
      state.dimension = d.name;
      state.segment = d.segments.indexOf(params.segment) >= 0 ? params.segment : d.segments[0];
    }
  }
  function initFilter() {
    var dim = document.getElementById('dimension');
    META.dimensions.forEach(function (d) {
      dim.appendChild(h('option', { value: d.name }, d.name === 'all' ? 'all journeys' : d.name));
    });
    readHash();
    dim.value = state.dimension;
    fillSegments();
    dim.addEventListener('change', function () {
      state.dimension = dim.value;
      state.segment = dimensionInfo(state.dimension).segments[0];
      fillSegments();
      render();
    });
    document.getElementById('segment').addEventListener('change', function (e) {
      state.segment = e.target.value;
      render();
    });
    document.getElementById('colour-by').addEventListener('change', function (e) {
      state.colourBy = e.target.value;
      render();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Totals

  function renderTotals(d) {
    var t = d.totals, root = clear(document.getElementById('totals'));
    function card(id, label, value, shown, extra) {
      return h('div', { 'class': 'card', id: id, 'data-value': value },
        h('div', { 'class': 'label' }, label), h('div', { 'class': 'value' }, shown),
        h('div', { 'class': 'extra' }, extra || '\u00a0'));
    }
    var convRate = t.journeys ? t.converted / t.journeys : null;
    append(root, [
      card('total-journeys', 'Journeys', t.journeys, fmtInt(t.journeys),
        fmtInt(t.open) + ' still open'),
      card('total-persons', 'Customers', t.persons, fmtInt(t.persons)),
      card('total-converted', 'Converted journeys', t.converted, fmtInt(t.converted),
        fmtPct(convRate) + ' of journeys'),
      card('total-revenue', 'Revenue', t.revenue, fmtMoney(t.revenue)),
      card('total-events', 'Touchpoint events', t.events, fmtInt(t.events)),
      card('total-answers', 'Survey answers', t.answers, fmtInt(t.answers))
    ]);
  }

  // ---------------------------------------------------------------------------------------------
  // Funnel: one column per stage, height by journeys reached; step conversion between columns.

  function renderFunnel(d) {
    var W = 1240, H = 290, top = 44, bottom = 70, left = 20, right = 20;
    var svg = svgRoot('funnel', W, H, 'Stage funnel');
    var rows = d.funnel, n = rows.length;
    if (!n) return;
    var total = rows[0].journeys || 1;
    var slot = (W - left - right) / n, bw = Math.min(150, slot * 0.52), ph = H - top - bottom;
    svg.appendChild(s('line', { x1: left, x2: W - right, y1: top + ph, y2: top + ph,
      stroke: '#b8c0cc' }));
    rows.forEach(function (r, i) {
      var x = left + slot * i + (slot - bw) / 2, hgt = Math.max(1, ph * r.reached / total);
      var g = s('g', { 'class': 'funnel-stage', 'data-stage': r.stage, 'data-rank': r.stage_rank,
        'data-reached': r.reached, 'data-step-conversion': r.step_conversion,
        'data-dropped': r.dropped, 'data-open': r.open_at_stage, 'data-journeys': r.journeys });
      g.appendChild(s('rect', { x: x, y: top + ph - hgt, width: bw, height: hgt, rx: 3,
        fill: stageColour(r.stage) }, title(r.stage + ': ' + fmtInt(r.reached) + ' journeys reached')));
      g.appendChild(s('text', { x: x + bw / 2, y: top + ph - hgt - 22, 'text-anchor': 'middle',
        'font-size': 17, 'font-weight': 700, 'class': 'reached' }, fmtInt(r.reached)));
      g.appendChild(s('text', { x: x + bw / 2, y: top + ph - hgt - 7, 'text-anchor': 'middle',
        'font-size': 11.5, 'class': 'muted' }, fmtPct(r.reached / total) + ' of journeys'));
      g.appendChild(s('text', { x: x + bw / 2, y: top + ph + 20, 'text-anchor': 'middle',
        'font-size': 14, 'font-weight': 600 }, r.stage));
      var sub = [];
      if (isNum(r.dropped)) sub.push(s('tspan', { 'class': 'bad' }, 'dropped ' + fmtInt(r.dropped)));
      sub.push(s('tspan', { 'class': 'muted', dx: sub.length ? 8 : 0 },
        'open ' + fmtInt(r.open_at_stage)));
      g.appendChild(s('text', { x: x + bw / 2, y: top + ph + 40, 'text-anchor': 'middle',
        'font-size': 12 }, sub));
      if (i < n - 1) {
        var ax = x + bw + 6, bx = left + slot * (i + 1) + (slot - bw) / 2 - 6, ay = top + ph - 26;
        g.appendChild(s('path', { d: 'M' + ax + ',' + ay + ' L' + (bx - 6) + ',' + ay,
          stroke: '#8a94a3', 'stroke-width': 1.5, fill: 'none' }));
        g.appendChild(s('path', { d: 'M' + (bx - 8) + ',' + (ay - 5) + ' L' + bx + ',' + ay +
          ' L' + (bx - 8) + ',' + (ay + 5) + 'Z', fill: '#8a94a3' }));
        g.appendChild(s('text', { x: (ax + bx) / 2, y: ay - 8, 'text-anchor': 'middle',
          'font-size': 14, 'font-weight': 700, 'class': 'step-conversion' },
          fmtPct(r.step_conversion)));
        g.appendChild(s('text', { x: (ax + bx) / 2, y: ay + 16, 'text-anchor': 'middle',
          'font-size': 11, 'class': 'muted' }, 'continue'));
      }
      svg.appendChild(g);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Journey map grid

  function painIndex(d) {
    var byTp = {};
    d.pain_points.forEach(function (p) {
      if (!p.touchpoint) return;
      (byTp[p.touchpoint] = byTp[p.touchpoint] || []).push(p);
    });
    return byTp;
  }
  function cellColour(metric, value, maxJourneys) {
    var sc = SCALES[metric];
    if (!isNum(value)) return null;
    var t = metric === 'journeys' ? Math.sqrt(value / (maxJourneys || 1))
      : (value - sc.lo) / (sc.hi - sc.lo);
    return ramp(sc.stops, t);
  }
  function renderLegend(maxJourneys) {
    var sc = SCALES[state.colourBy], root = clear(document.getElementById('grid-legend'));
    var cols = [0, 0.25, 0.5, 0.75, 1].map(function (t) { return rgb(ramp(sc.stops, t)); });
    var lo = state.colourBy === 'journeys' ? 0 : sc.lo;
    var hi = state.colourBy === 'journeys' ? maxJourneys : sc.hi;
    var bar = h('span', { 'class': 'ramp' });
    bar.style.background = 'linear-gradient(to right,' + cols.join(',') + ')';
    append(root, [sc.fmt(lo), bar, sc.fmt(hi) + (state.colourBy === 'exit_rate' ? '+' : ''),
      h('span', {}, '\u00b7 grey dashed: touchpoint not used in that stage')]);
  }
  function renderGrid(d) {
    var table = clear(document.getElementById('journey-grid'));
    var rows = d.grid, pains = painIndex(d);
    var columns = STAGES.slice();
    var hasNoStage = rows.some(function (r) { return r.cells[META.no_stage]; });
    if (hasNoStage) columns.push(META.no_stage);
    var maxJourneys = 1;
    rows.forEach(function (r) {
      columns.forEach(function (c) { if (r.cells[c]) maxJourneys = Math.max(maxJourneys, r.cells[c].journeys); });
    });
    renderLegend(maxJourneys);
    var head = h('tr', {},
      h('th', { 'class': 'tp' }, 'Touchpoint'),
      h('th', { 'class': 'kpi', title: 'Journeys that touched it' }, 'Journeys'),
      h('th', { 'class': 'kpi', title: 'Share of those journeys that converted' }, 'Conv.'),
      h('th', { 'class': 'kpi', title: 'Exits ÷ journeys' }, 'Exits'),
      h('th', { 'class': 'kpi', title: 'Journeys starting here, and the share of them that converted' }, 'Entry (conv.)'),
      columns.map(function (c) {
        var th = h('th', { 'class': 'stage', 'data-stage': c }, c);
        th.style.background = stageColour(c);
        return th;
      }));
    var colgroup = h('colgroup', {}, h('col', { style: 'width:170px' }), h('col', { style: 'width:70px' }),
      h('col', { style: 'width:46px' }), h('col', { style: 'width:46px' }), h('col', { style: 'width:84px' }),
      columns.map(function () { return h('col', {}); }));
    table.appendChild(colgroup);
    table.appendChild(h('thead', {}, head));
    var body = h('tbody', {});
    rows.forEach(function (r) {
      var flags = pains[r.touchpoint] || [];
      // The channel is shown only when the touchpoint's name does not already start with it.
      var showChannel = r.channel && r.touchpoint.indexOf(r.channel + '/') !== 0;
      var rowHead = h('th', { 'class': 'rowhead', title: r.touchpoint },
        flags.length ? h('span', { 'class': 'flag', title: flags.map(function (p) {
          return 'pain point #' + p.rank + ': ' + KIND_LABEL[p.kind];
        }).join(', ') }, '\u26a0') : null,
        r.touchpoint, showChannel ? h('span', { 'class': 'ch' }, r.channel) : null);
      var tr = h('tr', { 'data-touchpoint': r.touchpoint, 'data-journeys': r.journeys,
        'data-exits': r.exits, 'data-exit-rate': r.exit_rate, 'data-conversion-rate': r.conversion_rate,
        'data-nps': r.nps, 'data-nps-n': r.nps_n, 'data-csat': r.csat, 'data-ces': r.ces,
        'data-entry-journeys': r.entry_journeys, 'data-entry-conversion': r.entry_conversion,
        'data-pain': flags.map(function (p) { return p.kind; }).join(' ') || null },
        rowHead,
        h('td', { 'class': 'kpi' }, fmtInt(r.journeys)),
        h('td', { 'class': 'kpi' }, fmtPct(r.conversion_rate, 0)),
        h('td', { 'class': 'kpi' + (flags.some(function (p) { return p.kind === 'exits'; }) ? ' hot' : '') },
          fmtPct(r.exit_rate, 0)),
        h('td', { 'class': 'kpi' + (flags.some(function (p) { return p.kind === 'low_conversion_entry'; }) ? ' hot' : '') },
          r.entry_journeys ? fmtInt(r.entry_journeys) + ' (' + fmtPct(r.entry_conversion, 0) + ')' : '\u2013'));
      columns.forEach(function (c) {
        var cell = r.cells[c];
        if (!cell) {
          tr.appendChild(h('td', { 'class': 'cell empty', 'data-stage': c, 'data-touchpoint': r.touchpoint }));
          return;
        }
        var value = cell[state.colourBy];
        var colour = cellColour(state.colourBy, value, maxJourneys) || [236, 239, 243];
        var scores = [];
        if (cell.nps_n) scores.push(h('span', { 'class': 'sc' }, 'NPS ' + fmtNps(cell.nps)));
        if (cell.csat_n) scores.push(h('span', { 'class': 'sc' }, 'CSAT ' + fmtCsat(cell.csat)));
        if (cell.ces_n) scores.push(h('span', { 'class': 'sc' }, 'CES ' + fmtCes(cell.ces)));
        var td = h('td', { 'class': 'cell', 'data-stage': c, 'data-touchpoint': r.touchpoint,
          'data-journeys': cell.journeys, 'data-exits': cell.exits, 'data-exit-rate': cell.exit_rate,
          'data-nps': cell.nps, 'data-nps-n': cell.nps_n, 'data-csat': cell.csat,
          'data-csat-n': cell.csat_n, 'data-ces': cell.ces, 'data-ces-n': cell.ces_n,
          title: r.touchpoint + ' in ' + c + ': ' + fmtInt(cell.journeys) + ' journeys, ' +
            fmtInt(cell.exits) + ' exits' + (cell.nps_n ? ', ' + cell.nps_n + ' NPS answers' : '') },
          h('div', { 'class': 'top' }, h('span', { 'class': 'v' }, fmtInt(cell.journeys)),
            h('span', { 'class': 's' }, 'exit ' + fmtPct(cell.exit_rate, 0))),
          scores.length ? h('div', { 'class': 's scores' }, scores) : null);
        td.style.background = rgb(colour);
        td.style.color = textOn(colour);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
  }

  // ---------------------------------------------------------------------------------------------
  // Emotion curve: NPS and CSAT on the left axis (−100…100), CES on the right, inverted so that
  // up is better for every line.

  function renderEmotion(d) {
    var W = 620, H = 360, L = 48, R = 48, T = 22, B = 96;
    var svg = svgRoot('emotion', W, H, 'Emotion curve: survey scores by stage');
    var pts = d.emotion.points, n = pts.length;
    var pw = W - L - R, ph = H - T - B;
    function x(i) { return L + (n === 1 ? pw / 2 : pw * (0.06 + 0.88 * i / (n - 1))); }
    function yL(v) { return T + ph * (100 - v) / 200; }
    function yCes(v) { return T + ph * (v - 1) / 6; }
    svg.appendChild(s('rect', { x: L, y: T, width: pw, height: ph / 2, fill: '#eef7f0' }));
    svg.appendChild(s('rect', { x: L, y: T + ph / 2, width: pw, height: ph / 2, fill: '#fbefed' }));
    [-100, -50, 0, 50, 100].forEach(function (v) {
      svg.appendChild(s('line', { x1: L, x2: L + pw, y1: yL(v), y2: yL(v),
        'class': v === 0 ? '' : 'grid-line', stroke: v === 0 ? '#9aa3ad' : null }));
      svg.appendChild(s('text', { x: L - 6, y: yL(v) + 4, 'text-anchor': 'end', 'font-size': 11,
        'class': 'muted' }, v > 0 ? '+' + v : String(v).replace('-', '\u2212')));
    });
    [1, 2.5, 4, 5.5, 7].forEach(function (v) {
      svg.appendChild(s('text', { x: L + pw + 6, y: yCes(v) + 4, 'font-size': 11, 'class': 'muted' },
        v.toFixed(1)));
    });
    svg.appendChild(s('text', { x: 12, y: T + ph / 2, 'font-size': 11, 'class': 'muted',
      transform: 'rotate(-90 12 ' + (T + ph / 2) + ')', 'text-anchor': 'middle' }, 'NPS · CSAT %'));
    svg.appendChild(s('text', { x: W - 8, y: T + ph / 2, 'font-size': 11, 'class': 'muted',
      transform: 'rotate(90 ' + (W - 8) + ' ' + (T + ph / 2) + ')', 'text-anchor': 'middle' },
      'CES effort (1 = easiest, top)'));
    var series = [
      { key: 'nps', label: 'NPS', colour: '#2f5fd0', y: yL, width: 3.5, fmt: fmtNps },
      { key: 'csat', label: 'CSAT', colour: '#1f8a4c', y: yL, width: 2, fmt: fmtCsat },
      { key: 'ces', label: 'CES', colour: '#d9822b', y: yCes, width: 2, dash: '6 4', fmt: fmtCes }
    ];
    series.forEach(function (se) {
      var path = '', open = false;
      pts.forEach(function (p, i) {
        if (!p[se.key + '_n']) { open = false; return; }
        path += (open ? ' L' : ' M') + x(i) + ',' + se.y(p[se.key]);
        open = true;
      });
      if (path) {
        svg.appendChild(s('path', { d: path.trim(), fill: 'none', stroke: se.colour,
          'stroke-width': se.width, 'stroke-dasharray': se.dash || null, 'class': 'line',
          'data-metric': se.key }));
      }
      pts.forEach(function (p, i) {
        if (!p[se.key + '_n']) return;
        var cy = se.y(p[se.key]);
        svg.appendChild(s('circle', { cx: x(i), cy: cy, r: se.key === 'nps' ? 5 : 3.5,
          fill: se.colour, 'class': 'point', 'data-metric': se.key, 'data-stage': p.stage,
          'data-value': p[se.key], 'data-n': p[se.key + '_n'] },
          title(se.label + ' at ' + p.stage + ': ' + se.fmt(p[se.key]) + ' (' + p[se.key + '_n'] + ' answers)')));
        if (se.key === 'nps') {
          svg.appendChild(s('text', { x: x(i) + 8, y: cy - 8, 'font-size': 12, 'font-weight': 700,
            'class': 'halo', fill: se.colour }, se.fmt(p[se.key])));
        }
      });
    });
    // Under each stage: its scores, coloured like their lines, and how many answers they rest on.
    pts.forEach(function (p, i) {
      svg.appendChild(s('text', { x: x(i), y: T + ph + 18, 'text-anchor': 'middle', 'font-size': 12.5,
        'font-weight': 600 }, p.stage));
      series.forEach(function (se, j) {
        svg.appendChild(s('text', { x: x(i), y: T + ph + 34 + 14 * j, 'text-anchor': 'middle',
          'font-size': 11, fill: p[se.key + '_n'] ? se.colour : '#9aa3ad' },
          se.label + ' ' + (p[se.key + '_n'] ? se.fmt(p[se.key]) : '\u2013')));
      });
      svg.appendChild(s('text', { x: x(i), y: T + ph + 34 + 14 * series.length, 'text-anchor': 'middle',
        'font-size': 10.5, 'class': 'muted' }, fmtInt(Math.max(p.nps_n, p.csat_n, p.ces_n)) + ' answers'));
    });
    var lx = L + 8;
    series.forEach(function (se) {
      svg.appendChild(s('line', { x1: lx, x2: lx + 18, y1: T + 10, y2: T + 10, stroke: se.colour,
        'stroke-width': se.width, 'stroke-dasharray': se.dash || null }));
      svg.appendChild(s('text', { x: lx + 22, y: T + 14, 'font-size': 11.5 }, se.label));
      lx += 70;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Weekly abandonment per rule; spike weeks (pain points) in red.

  function renderAbandonment(d) {
    var W = 620, H = 330, L = 46, R = 90, T = 22, B = 50;
    var svg = svgRoot('abandonment', W, H, 'Abandonment rate by week');
    var weeks = [];
    d.abandonment.forEach(function (r) {
      r.weeks.forEach(function (w) { if (weeks.indexOf(w.week) < 0) weeks.push(w.week); });
    });
    weeks.sort();
    var pw = W - L - R, ph = H - T - B;
    var max = 0.2;
    d.abandonment.forEach(function (r) {
      r.weeks.forEach(function (w) { if (isNum(w.abandonment_rate)) max = Math.max(max, w.abandonment_rate); });
    });
    max = Math.min(1, Math.ceil(max * 10 + 1) / 10);
    function x(i) { return L + (weeks.length <= 1 ? pw / 2 : pw * (0.04 + 0.92 * i / (weeks.length - 1))); }
    function y(v) { return T + ph * (1 - v / max); }
    for (var v = 0; v <= max + 1e-9; v += 0.1) {
      svg.appendChild(s('line', { x1: L, x2: L + pw, y1: y(v), y2: y(v), 'class': 'grid-line' }));
      svg.appendChild(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11,
        'class': 'muted' }, Math.round(v * 100) + '%'));
    }
    weeks.forEach(function (w, i) {
      svg.appendChild(s('text', { x: x(i), y: T + ph + 18, 'text-anchor': 'middle', 'font-size': 11 },
        w.slice(5)));
    });
    svg.appendChild(s('text', { x: L + pw / 2, y: T + ph + 38, 'text-anchor': 'middle',
      'font-size': 11, 'class': 'muted' }, 'week starting (Monday)'));
    if (!weeks.length) {
      svg.appendChild(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'class': 'muted' },
        'no abandonment attempts in this segment'));
      return;
    }
    var spikes = {};
    d.pain_points.forEach(function (p) {
      if (p.kind === 'abandonment_spike') spikes[p.rule + '|' + p.week] = p;
    });
    var palette = ['#2f5fd0', '#8e44ad', '#17becf', '#9c755f'], labelled = {};
    d.abandonment.forEach(function (r, ri) {
      var colour = palette[ri % palette.length], path = '', lastY = null;
      r.weeks.forEach(function (w) {
        if (!isNum(w.abandonment_rate)) return;
        var i = weeks.indexOf(w.week);
        path += (path ? ' L' : 'M') + x(i) + ',' + y(w.abandonment_rate);
        lastY = y(w.abandonment_rate);
      });
      if (isNum(r.median_rate)) {
        svg.appendChild(s('line', { x1: L, x2: L + pw, y1: y(r.median_rate), y2: y(r.median_rate),
          stroke: colour, 'stroke-dasharray': '4 4', 'stroke-width': 1.2, 'class': 'median',
          'data-rule': r.rule, 'data-median': r.median_rate }));
      }
      if (path) {
        svg.appendChild(s('path', { d: path, fill: 'none', stroke: colour, 'stroke-width': 2.5,
          'class': 'line', 'data-rule': r.rule }));
        svg.appendChild(s('text', { x: L + pw + 8, y: lastY + 4, 'font-size': 12, 'font-weight': 600,
          fill: colour }, r.rule));
      }
      r.weeks.forEach(function (w) {
        if (!isNum(w.abandonment_rate)) return;
        var i = weeks.indexOf(w.week), spike = spikes[r.rule + '|' + w.week];
        var few = w.abandoned + w.completed < META.options.min_attempts;
        var g = s('g', { 'class': 'week' + (spike ? ' spike' : ''), 'data-rule': r.rule,
          'data-week': w.week, 'data-rate': w.abandonment_rate, 'data-attempts': w.attempts,
          'data-abandoned': w.abandoned, 'data-spike': spike ? 'true' : 'false' });
        g.appendChild(s('circle', { cx: x(i), cy: y(w.abandonment_rate), r: spike ? 7 : 3.5,
          fill: spike ? cssVar('--bad') : few ? '#fff' : colour, stroke: few ? colour : '#fff',
          'stroke-width': 1.5 },
          title(r.rule + ', week of ' + w.week + ': ' + fmtPct(w.abandonment_rate) + ' of ' +
            fmtInt(w.abandoned + w.completed) + ' decided attempts abandoned' +
            (few ? ' (few attempts)' : ''))));
        if (spike) {
          // Labels of spikes in the same week stack upwards from the week's highest point.
          var weekTop = Math.min.apply(null, d.abandonment.map(function (o) {
            var ow = o.weeks.filter(function (q) { return q.week === w.week && isNum(q.abandonment_rate); })[0];
            return ow ? y(ow.abandonment_rate) : Infinity;
          }));
          labelled[w.week] = (labelled[w.week] || 0) + 1;
          g.appendChild(s('text', { x: x(i), y: weekTop - 12 - 15 * (labelled[w.week] - 1),
            'text-anchor': 'middle', 'font-size': 11.5, 'font-weight': 700, 'class': 'bad halo' },
            r.rule + ' spike ' + fmtPct(w.abandonment_rate, 0)));
        }
        svg.appendChild(g);
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Pain points

  function painText(p) {
    if (p.kind === 'exits') {
      return { head: 'Customers leave at ' + p.touchpoint,
        ev: 'exit rate ' + fmtPct(p.rate) + ' of ' + fmtInt(p.n) + ' journeys vs ' +
          fmtPct(p.baseline) + ' across touchpoints; ' + fmtInt(p.count) + ' exits',
        unit: 'exits beyond baseline' };
    }
    if (p.kind === 'low_conversion_entry') {
      return { head: p.touchpoint + ' brings journeys that rarely convert',
        ev: fmtInt(p.n) + ' journeys start here; ' + fmtPct(p.rate) + ' convert vs ' +
          fmtPct(p.baseline) + ' of journeys entering elsewhere',
        unit: 'conversions missing' };
    }
    if (p.kind === 'poor_scores') {
      var parts = [];
      if (p.nps_n) parts.push('NPS ' + fmtNps(p.nps) + ' (' + p.nps_n + ')');
      if (p.csat_n) parts.push('CSAT ' + fmtCsat(p.csat) + ' (' + p.csat_n + ')');
      if (p.ces_n) parts.push('CES ' + fmtCes(p.ces) + ' (' + p.ces_n + ')');
      return { head: 'Poor experience at ' + p.touchpoint,
        ev: parts.join(', ') + (isNum(p.baseline_nps) ? '; NPS elsewhere ' + fmtNps(p.baseline_nps) : ''),
        unit: 'unhappy journeys beyond baseline' };
    }
    return { head: p.rule + ' abandonment spike, week of ' + p.week,
      ev: fmtPct(p.rate) + ' abandoned (' + fmtInt(p.count) + ' of ' + fmtInt(p.n) +
        ' attempts) vs a median week of ' + fmtPct(p.baseline),
      unit: 'abandonments beyond median' };
  }
  function renderPain(d) {
    var root = clear(document.getElementById('pain-points'));
    if (!d.pain_points.length) {
      root.appendChild(h('li', { 'class': 'none' }, 'No pain point stands out in this segment ' +
        '(too little volume, or nothing differs enough from its baseline).'));
      return;
    }
    d.pain_points.forEach(function (p) {
      var t = painText(p);
      root.appendChild(h('li', { 'data-kind': p.kind, 'data-rank': p.rank,
        'data-touchpoint': p.touchpoint || null, 'data-rule': p.rule || null,
        'data-week': p.week || null, 'data-impact': p.impact, 'data-rate': p.rate,
        'data-baseline': p.baseline },
        h('div', { 'class': 'rank' }, p.rank),
        h('div', {}, h('div', { 'class': 'head' }, h('span', { 'class': 'tag' }, KIND_LABEL[p.kind]),
          t.head), h('div', { 'class': 'ev' }, t.ev)),
        h('div', { 'class': 'impact' }, '\u2248 ' + fmtInt(p.impact), h('small', {}, t.unit))));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Sankey diagrams: nodes in columns, heights by flow, links as bezier bands.

  function sankey(svg, nodes, links, opt) {
    var byId = {};
    nodes.forEach(function (n) { n.inV = 0; n.outV = 0; n.ins = []; n.outs = []; byId[n.id] = n; });
    links.forEach(function (l) {
      l.s = byId[l.source]; l.t = byId[l.target];
      l.s.outV += l.value; l.t.inV += l.value; l.s.outs.push(l); l.t.ins.push(l);
    });
    nodes = nodes.filter(function (n) { return n.inV + n.outV > 0; });
    nodes.forEach(function (n) { n.value = Math.max(n.inV, n.outV); });
    var cols = [];
    nodes.forEach(function (n) { (cols[n.col] = cols[n.col] || []).push(n); });
    var ncol = cols.length, innerH = opt.height - opt.top - opt.bottom;
    var k = Infinity;
    cols.forEach(function (c) {
      if (!c) return;
      var sum = c.reduce(function (a, n) { return a + n.value; }, 0);
      k = Math.min(k, (innerH - opt.pad * (c.length - 1)) / sum);
    });
    var span = opt.width - opt.left - opt.right - opt.nodeWidth;
    cols.forEach(function (c, ci) {
      if (!c) return;
      c.sort(function (a, b) { return a.order - b.order || b.value - a.value; });
      // A column with room to spare spreads its nodes (up to maxPad apart) so labels fit.
      var used = c.reduce(function (a, n) { return a + Math.max(2, n.value * k); }, 0);
      var pad = c.length > 1 ? Math.max(opt.pad, Math.min(opt.maxPad || opt.pad,
        (innerH - used) / (c.length - 1))) : 0;
      var y = opt.top;
      c.forEach(function (n) {
        n.x = opt.left + (ncol <= 1 ? 0 : span * ci / (ncol - 1));
        n.y = y; n.h = Math.max(2, n.value * k); y += n.h + pad;
      });
    });
    nodes.forEach(function (n) {
      n.outs.sort(function (a, b) { return a.t.y - b.t.y; });
      n.ins.sort(function (a, b) { return a.s.y - b.s.y; });
      var sy = n.y; n.outs.forEach(function (l) { l.w = Math.max(1, l.value * k); l.sy = sy + l.w / 2; sy += l.value * k; });
      var ty = n.y; n.ins.forEach(function (l) { l.ty = ty + Math.max(1, l.value * k) / 2; ty += l.value * k; });
    });
    var gl = s('g', { 'class': 'links' });
    links.forEach(function (l) {
      var x0 = l.s.x + opt.nodeWidth, x1 = l.t.x, xm = (x0 + x1) / 2;
      gl.appendChild(s('path', { 'class': 'link', d: 'M' + x0 + ',' + l.sy + ' C' + xm + ',' + l.sy +
        ' ' + xm + ',' + l.ty + ' ' + x1 + ',' + l.ty, stroke: l.colour, 'stroke-width': l.w,
        'data-source': l.sourceLabel, 'data-target': l.targetLabel, 'data-value': l.value,
        'data-kind': l.kind || null },
        title(l.sourceLabel + ' \u2192 ' + l.targetLabel + ': ' + fmtInt(l.value))));
    });
    svg.appendChild(gl);
    var gn = s('g', { 'class': 'nodes' });
    nodes.forEach(function (n) {
      var g = s('g', { 'class': 'node', 'data-node': n.label, 'data-stage': n.stage || null,
        'data-value': n.value });
      g.appendChild(s('rect', { x: n.x, y: n.y, width: opt.nodeWidth, height: n.h, fill: n.colour, rx: 2 },
        title(n.label + ': ' + fmtInt(n.value))));
      // Labels sit right of their node; with labelsLeftFirst the first column's sit left of it.
      var left = n.col === 0 && opt.labelsLeftFirst;
      if (n.h >= opt.minLabelHeight || n.col === 0 || n.col === ncol - 1) {
        g.appendChild(s('text', { x: left ? n.x - 6 : n.x + opt.nodeWidth + 6,
          y: n.y + n.h / 2 + 4, 'font-size': opt.fontSize || 12, 'class': 'halo',
          'text-anchor': left ? 'end' : 'start' },
          n.label + (opt.showValues ? '  ' + fmtInt(n.value) : '')));
      }
      gn.appendChild(g);
    });
    svg.appendChild(gn);
  }

  function renderStageSankey(d) {
    var W = 1240, H = 420;
    var svg = svgRoot('stage-sankey', W, H, 'Stage moves');
    var START = '(journey start)', DROP = 'dropped';
    var nodes = [{ id: 'L:', label: START, col: 0, order: -1, colour: '#5f6b7a' }];
    STAGES.forEach(function (st, i) {
      nodes.push({ id: 'L:' + st, label: st, stage: st, col: 0, order: i, colour: stageColour(st) });
      nodes.push({ id: 'R:' + st, label: st, stage: st, col: 1, order: i, colour: stageColour(st) });
    });
    nodes.push({ id: 'R:', label: DROP, col: 1, order: 99, colour: cssVar('--bad') });
    var rank = {};
    STAGES.forEach(function (st, i) { rank[st] = i; });
    var links = d.stage_sankey.links.map(function (l) {
      var src = l.source === null ? START : l.source, tgt = l.target === null ? DROP : l.target;
      var kind = l.target === null ? 'dropped' : l.source === null ? 'entry'
        : rank[l.target] > rank[l.source] ? 'forward' : 'backward';
      var colour = kind === 'dropped' ? cssVar('--bad') : kind === 'backward' ? '#9aa3ad'
        : stageColour(kind === 'entry' ? l.target : l.source);
      return { source: 'L:' + (l.source || ''), target: 'R:' + (l.target || ''), value: l.value,
        sourceLabel: src, targetLabel: tgt, colour: colour, kind: kind };
    });
    svg.appendChild(s('text', { x: 200, y: 14, 'font-size': 12, 'class': 'muted' }, 'from'));
    svg.appendChild(s('text', { x: W - 210, y: 14, 'font-size': 12, 'class': 'muted', 'text-anchor': 'end' }, 'to'));
    sankey(svg, nodes, links, { width: W, height: H, top: 24, bottom: 30, left: 200, right: 200,
      nodeWidth: 16, pad: 10, minLabelHeight: 0, labelsLeftFirst: true, showValues: true });
    var note = d.stage_sankey.total_links > d.stage_sankey.links.length
      ? 'showing the ' + d.stage_sankey.links.length + ' largest of ' + d.stage_sankey.total_links + ' moves · '
      : '';
    svg.appendChild(s('text', { x: W / 2, y: H - 8, 'font-size': 11.5, 'class': 'muted', 'text-anchor': 'middle' },
      note + 'coloured: forward and entry moves · grey: back to an earlier stage · red: journeys dropped at their furthest stage'));
  }

  function renderTouchpointSankey(d) {
    var W = 1240, H = 560;
    var svg = svgRoot('touchpoint-sankey', W, H, 'Main paths between touchpoints');
    var links = d.touchpoint_sankey.links;
    if (!links.length) {
      svg.appendChild(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', 'class': 'muted' },
        'no moves between stages in this segment'));
      return;
    }
    var used = [];
    links.forEach(function (l) {
      [l.source_stage, l.target_stage].forEach(function (st) { if (used.indexOf(st) < 0) used.push(st); });
    });
    used.sort(function (a, b) { return STAGES.indexOf(a) - STAGES.indexOf(b); });
    var nodes = {}, out = [];
    function node(tp, st) {
      var id = st + '|' + tp;
      if (!nodes[id]) nodes[id] = { id: id, label: tp, stage: st, col: used.indexOf(st), order: 0, colour: stageColour(st) };
      return id;
    }
    links.forEach(function (l) {
      out.push({ source: node(l.source, l.source_stage), target: node(l.target, l.target_stage),
        value: l.value, colour: stageColour(l.source_stage),
        sourceLabel: l.source + ' (' + l.source_stage + ')', targetLabel: l.target + ' (' + l.target_stage + ')' });
    });
    used.forEach(function (st, i) {
      svg.appendChild(s('text', { x: 40 + (W - 40 - 230 - 14) * (used.length <= 1 ? 0 : i / (used.length - 1)),
        y: 14, 'font-size': 12.5, 'font-weight': 700, fill: stageColour(st) }, st));
    });
    sankey(svg, Object.keys(nodes).map(function (k) { return nodes[k]; }), out,
      { width: W, height: H, top: 26, bottom: 26, left: 40, right: 230, nodeWidth: 14, pad: 7,
        maxPad: 26, minLabelHeight: 0, fontSize: 11.5, showValues: false });
    var shown = links.reduce(function (a, l) { return a + l.value; }, 0);
    svg.appendChild(s('text', { x: W / 2, y: H - 6, 'font-size': 11.5, 'class': 'muted', 'text-anchor': 'middle' },
      'the ' + links.length + ' largest of ' + d.touchpoint_sankey.total_links + ' forward touchpoint moves (' +
      fmtPct(shown / (d.touchpoint_sankey.total_moves || 1), 0) + ' of ' + fmtInt(d.touchpoint_sankey.total_moves) + ' moves)'));
  }

  // ---------------------------------------------------------------------------------------------

  function render() {
    var d = DATA.segments[state.dimension][state.segment];
    var main = document.getElementById('report');
    main.setAttribute('data-rendered', 'false');
    renderTotals(d);
    renderFunnel(d);
    renderGrid(d);
    renderEmotion(d);
    renderAbandonment(d);
    renderPain(d);
    renderStageSankey(d);
    renderTouchpointSankey(d);
    main.setAttribute('data-dimension', state.dimension);
    main.setAttribute('data-segment', state.segment);
    main.setAttribute('data-rendered', 'true');
    var hash = state.dimension === 'all' ? '' : '#dimension=' + encodeURIComponent(state.dimension) +
      '&segment=' + encodeURIComponent(state.segment);
    if (location.hash !== hash && history.replaceState) {
      history.replaceState(null, '', hash || location.pathname + location.search);
    }
  }

  [['opt-journeys', 'min_journeys'], ['opt-answers', 'min_answers'], ['opt-attempts', 'min_attempts'],
    ['opt-z', 'min_z']].forEach(function (o) {
    document.getElementById(o[0]).textContent = String(META.options[o[1]]);
  });
  initFilter();
  window.addEventListener('hashchange', function () {
    readHash();
    document.getElementById('dimension').value = state.dimension;
    fillSegments();
    render();
  });
  render();
}());
