// Draws the benchmark report's chart: panels of horizontal bars, as an SVG rendered to PNG by @resvg/resvg-js (a
// prebuilt binary from npm, no native build), with the system's DejaVu Sans font.
import { Resvg } from "@resvg/resvg-js"

export interface Bar {
  readonly label: string
  readonly value: number
  /** Text shown at the end of the bar (defaults to the value). */
  readonly text?: string
  readonly color?: string
}

export interface Panel {
  readonly title: string
  readonly unit: string
  readonly bars: ReadonlyArray<Bar>
  /** A vertical reference line (e.g. a configured budget), with its label. */
  readonly reference?: { readonly value: number; readonly label: string }
}

export const colors = { engine: "#2f6fb3", sdk: "#c0504d", other: "#6a9f3a", muted: "#8c8c8c" }

const valueText = (bar: Bar) => bar.text ?? String(Math.round(bar.value))

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

const width = 1000
const labelWidth = 330
const barHeight = 22
const gap = 6
const panelPad = 56

/** The chart as an SVG document. */
export const svg = (title: string, subtitle: string, panels: ReadonlyArray<Panel>): string => {
  const parts: Array<string> = []
  let y = 70
  for (const panel of panels) {
    const max = Math.max(...panel.bars.map((b) => b.value), panel.reference?.value ?? 0) || 1
    const plot = width - labelWidth - 190 // room for the value text
    const x = (v: number) => labelWidth + (v / max) * plot
    parts.push(
      `<text x="20" y="${y + 18}" font-size="17" font-weight="bold">${escape(panel.title)}` +
        ` <tspan font-weight="normal" fill="#555">(${escape(panel.unit)})</tspan></text>`
    )
    y += 32
    const top = y
    const firstBar = parts.length
    for (const bar of panel.bars) {
      parts.push(
        `<text x="${labelWidth - 10}" y="${y + 16}" font-size="13" text-anchor="end">${escape(bar.label)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${Math.max(1, x(bar.value) - labelWidth).toFixed(1)}" ` +
          `height="${barHeight}" fill="${bar.color ?? colors.engine}"/>`,
        // a white box behind the value text, so reference lines do not cross it
        `<rect x="${(x(bar.value) + 3).toFixed(1)}" y="${y + 2}" width="${
          (valueText(bar).length * 7.8 + 6).toFixed(1)
        }" ` +
          `height="${barHeight - 4}" fill="white"/>`,
        `<text x="${(x(bar.value) + 6).toFixed(1)}" y="${y + 16}" font-size="13">${
          escape(bar.text ?? String(Math.round(bar.value)))
        }</text>`
      )
      y += barHeight + gap
    }
    if (panel.reference !== undefined) {
      // drawn under the bars and their texts
      const rx = x(panel.reference.value).toFixed(1)
      parts.splice(
        firstBar,
        0,
        `<line x1="${rx}" y1="${top - 4}" x2="${rx}" y2="${y}" stroke="#222" stroke-width="2" stroke-dasharray="6,4"/>`
      )
      parts.push(
        `<text x="${rx}" y="${y + 14}" font-size="12" text-anchor="middle">${escape(panel.reference.label)}</text>`
      )
      y += 16
    }
    y += panelPad - 24
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `font-family="DejaVu Sans, sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="20" y="32" font-size="22" font-weight="bold">${escape(title)}</text>` +
    `<text x="20" y="54" font-size="13" fill="#555">${escape(subtitle)}</text>` +
    parts.join("") + `</svg>`
}

/** The chart as a PNG. */
export const png = (title: string, subtitle: string, panels: ReadonlyArray<Panel>): Buffer =>
  new Resvg(svg(title, subtitle, panels), {
    background: "white",
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }
  }).render().asPng()
