import uPlot from '/dashboard/vendor/uplot/uPlot.esm.js'

const COLORS = { created: '#1d4ed8', closed: '#047857' }
const HEIGHT = 260
const DAY = 86_400

let plot
let resizeObserver

const seconds = (date) => Date.parse(`${date}T00:00:00Z`) / 1000

/** Created (bars) and closed (line) per UTC day, drawn into `container`; replaces the previous chart. */
export function drawPerDay(container, perDay, labels, locale) {
  plot?.destroy()
  resizeObserver?.disconnect()
  plot = undefined
  if (perDay.length === 0) return
  const dayFormat = new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'short', timeZone: 'UTC' })
  const data = [
    perDay.map((day) => seconds(day.date)),
    perDay.map((day) => day.created),
    perDay.map((day) => day.closed),
  ]
  const options = {
    width: container.clientWidth,
    height: HEIGHT,
    // The dates are UTC days: show them as such whatever the browser's zone.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: {
      // From the first day to the last, and half a day either side so that their bars are drawn whole.
      // Read from the data: for a single point uPlot proposes a max 86,400 *thousand* seconds on
      // (years of axis); one day must stay one day.
      x: { time: true, range: (u) => [u.data[0][0] - DAY / 2, u.data[0][u.data[0].length - 1] + DAY / 2] },
      y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
    },
    axes: [
      {
        // Whole days only: a tick between two days would repeat a date.
        incrs: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY],
        values: (_u, ticks) => ticks.map((tick) => dayFormat.format(new Date(tick * 1000))),
      },
      { values: (_u, ticks) => ticks.map((tick) => (Number.isInteger(tick) ? tick : '')) },
    ],
    series: [
      { label: labels.date, value: (_u, ts) => (ts == null ? '–' : dayFormat.format(new Date(ts * 1000))) },
      {
        label: labels.created,
        stroke: COLORS.created,
        fill: `${COLORS.created}99`,
        paths: uPlot.paths.bars({ size: [0.7, 24] }),
        points: { show: false },
      },
      { label: labels.closed, stroke: COLORS.closed, width: 2, points: { size: 6, fill: COLORS.closed } },
    ],
  }
  plot = new uPlot(options, data, container)
  resizeObserver = new ResizeObserver(() => plot?.setSize({ width: container.clientWidth, height: HEIGHT }))
  resizeObserver.observe(container)
}
