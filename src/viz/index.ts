// Public API of src/viz: plotly figure builders (plain `{ data, layout }` objects) and ways to show them.
export * from './figure';
export * from './show';
export * from './basic';
export * from './doge';
export * from './training';
export * from './mqar';
export * from './diagrams';
export * from './eval';
export * from './finetune';
export * from './ssd';
