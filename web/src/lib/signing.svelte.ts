/**
 * What the page has asked an extension to sign, in words, for as long as it waits: an
 * extension shows raw payloads as hex, so the page says what they are.
 */
export const signing = $state<{ words: string | null }>({ words: null });
