/**
 * Names of new objects: a second "cube" is "cube 2", a copy of "cube 2" is the next free number
 * ("cube 3"), never "cube copy copy". The stem is the name without a trailing number or the
 * " copy" suffixes older clients wrote.
 */

const SUFFIX = /(?:\s+copy)+$|\s+\d+$/i

/** The name without its trailing number or "copy" suffixes ("cube 2 copy" → "cube"). */
export function stemOf(name: string): string {
  let stem = name.trim()
  for (let previous = ''; previous !== stem;) {
    previous = stem
    stem = stem.replace(SUFFIX, '')
  }
  return stem === '' ? name.trim() : stem
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * The name for a new object called like `name` among `existing` names: `name` itself when no
 * object has its stem yet, else the stem with the next number after the highest in use.
 */
export function nextName(name: string, existing: Iterable<string>): string {
  const stem = stemOf(name)
  const numbered = new RegExp(`^${escape(stem)}(?:\\s+(\\d+))?$`, 'i')
  let highest = 0
  for (const other of existing) {
    const match = numbered.exec(other.trim())
    if (match) highest = Math.max(highest, match[1] ? Number(match[1]) : 1)
  }
  return highest === 0 ? name.trim() : `${stem} ${highest + 1}`
}
