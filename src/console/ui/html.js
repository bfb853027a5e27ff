// The UI library, bound once: Preact components written with htm tagged templates
// (no build step). Views import from here.
import { h, render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';

export const html = htm.bind(h);
export { render, useCallback, useEffect, useMemo, useRef, useState };
