// Public API of src/train (owned by the work on this area).
export {};
