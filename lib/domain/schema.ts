/**
 * The schema library: zod's tree-shakable `zod/mini` API with its English messages.
 * The full API adds about 430 KB to every bundle; this adds about 20 KB. Import it as a
 * namespace (`import * as z from './schema.ts'`) so that bundles keep only what is used.
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';
