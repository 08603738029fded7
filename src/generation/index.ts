// Public API of src/generation (owned by the work on this area).
export {};
