/**
 * A text starting with one of these is read as a formula by Excel, LibreOffice or Google Sheets
 * (tab and CR too, after they are stripped). OWASP's advice: prefix a single quote. A cell's text
 * may hold line breaks, and a program that splits lines itself (a CSV opened by one that ignores
 * quotes) starts a cell at each: so every line of the text is guarded, not only the first.
 */
const FORMULA_AT_LINE_START = /(?:^|(?<=[\r\n]))[=+\-@\t\r]/g
const NEUTRALISED_AT_LINE_START = /(?:^|(?<=[\r\n]))'(?=[=+\-@\t\r])/g

export function neutraliseFormula(text: string): string {
  return text.replace(FORMULA_AT_LINE_START, "'$&")
}

/** The inverse, for a file we exported coming back as an import. */
export function restoreNeutralised(text: string): string {
  return text.replace(NEUTRALISED_AT_LINE_START, '')
}
