/**
 * The embedded story corpus: short children's stories (TinyStories-like) generated from a small grammar and word
 * lists, offline and deterministic (the same seed gives the same text on every machine).
 *
 * Why it exists: Brown is real English, and a model a CPU trains in minutes writes word salad on it. These stories
 * use about 260 distinct words and a handful of plot shapes (meet, lose and find, help, share, weather), so a 1.5M-parameter
 * Doge writes fluent sentences after a few minutes of training; the notebooks use it to show learning you can see.
 * Input name for `wm tokenizer train` / `wm data prepare`: `stories` (like `brown`).
 *
 * Every story names a hero, gives them a wish, an event and an ending; pronouns, names and objects agree within
 * a story, so a model that has learned the corpus must carry the hero's name and pronoun across sentences.
 */
import { dataRng } from '../ops/random';

interface Hero {
  name: string;
  kind: string;
  he: string;
  his: string;
  him: string;
}

const GIRLS = ['Lily', 'Mia', 'Sue', 'Anna', 'Emma', 'Lucy', 'Sara', 'Kim', 'Amy', 'Rose', 'Jane', 'Zoe'];
const BOYS = ['Tom', 'Ben', 'Max', 'Sam', 'Tim', 'Leo', 'Jack', 'Joe', 'Bob', 'Dan', 'Finn', 'Noah'];
const ANIMALS = ['cat', 'dog', 'bird', 'bunny', 'fox', 'frog', 'duck', 'bear', 'mouse', 'puppy', 'kitten', 'owl'];
const ADJ = ['little', 'happy', 'small', 'brave', 'kind', 'shy', 'curious', 'silly', 'gentle', 'clever'];
const COLOURS = ['red', 'blue', 'green', 'yellow', 'pink', 'purple', 'shiny', 'big', 'soft', 'round'];
const TOYS = ['ball', 'kite', 'toy car', 'teddy bear', 'drum', 'hat', 'box', 'boat', 'book', 'balloon', 'doll', 'block'];
const FOODS = ['apple', 'cake', 'cookie', 'sandwich', 'pie', 'banana', 'carrot', 'muffin'];
const PLACES = ['park', 'garden', 'forest', 'house', 'yard', 'beach', 'farm', 'school', 'village', 'field'];
const SPOTS = ['under a tree', 'near the pond', 'behind a rock', 'in the grass', 'under the bed', 'by the fence', 'in a hole', 'next to a flower'];
const FRIENDS = ['a friendly dog', 'an old owl', 'a little bird', 'a big bear', 'a kind girl', 'a tall boy', 'a small frog', 'a wise cat'];
const PARENTS = ['mom', 'dad', 'grandma', 'grandpa'];
const PLAYS = ['play with', 'look at', 'share', 'show everyone', 'take care of'];
const FEELINGS_BAD = ['sad', 'scared', 'worried', 'upset'];
const FEELINGS_GOOD = ['happy', 'glad', 'proud', 'excited'];
const WEATHER = ['it started to rain', 'the wind began to blow', 'the sky became dark', 'it got very cold'];
const LESSONS = [
  'It is good to share with friends.',
  'Being kind makes everyone happy.',
  'Friends help each other.',
  'It is important to be careful.',
  'Never give up when things are hard.',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function an(word: string): string {
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function hero(r: () => number): Hero {
  const girl = r() < 0.5;
  const name = pick(r, girl ? GIRLS : BOYS);
  const kind = r() < 0.5 ? (girl ? 'girl' : 'boy') : pick(r, ANIMALS);
  return girl ? { name, kind, he: 'she', his: 'her', him: 'her' } : { name, kind, he: 'he', his: 'his', him: 'him' };
}

/** The opening: who, where, what they love. */
function opening(r: () => number, h: Hero, place: string): string {
  const adj = pick(r, ADJ);
  const first = r() < 0.5 ? 'Once upon a time, there was' : 'One day, there was';
  const loves = r() < 0.5 ? `${cap(h.he)} loved to play in the ${place}.` : `${cap(h.he)} lived in a ${place} with ${h.his} ${pick(r, PARENTS)}.`;
  return `${first} ${an(adj)} ${h.kind} named ${h.name}. ${loves}`;
}

/** One plot: a short sequence of sentences about the hero and one object. */
function plot(r: () => number, h: Hero, place: string): string[] {
  const colour = pick(r, COLOURS);
  const toy = pick(r, TOYS);
  const thing = `${colour} ${toy}`;
  const friend = pick(r, FRIENDS);
  const bad = pick(r, FEELINGS_BAD);
  const good = pick(r, FEELINGS_GOOD);
  const He = cap(h.he);
  switch (Math.floor(r() * 5)) {
    case 0: // find something
      return [
        `One day, ${h.name} found ${an(thing)} ${pick(r, SPOTS)}.`,
        `${He} was very ${good}. ${He} wanted to ${pick(r, PLAYS)} the ${toy}.`,
        `${He} ran to ${friend} and said, "Look what I found!"`,
        `They played with the ${toy} all day long.`,
      ];
    case 1: // lose something, a friend helps
      return [
        `${h.name} had ${an(thing)}. ${He} loved it very much.`,
        `One day, ${h.name} lost the ${toy} in the ${place}. ${He} felt ${bad} and started to cry.`,
        `Then ${friend} came and asked, "Why are you ${bad}?"`,
        `${h.name} said, "I lost my ${toy}." They looked ${pick(r, SPOTS)} and found it.`,
        `${h.name} was ${good} again and said, "Thank you!"`,
      ];
    case 2: { // share food
      const food = pick(r, FOODS);
      return [
        `One morning, ${h.name}'s ${pick(r, PARENTS)} gave ${h.him} ${an(food)}.`,
        `${h.name} saw ${friend} who looked hungry.`,
        `${He} thought for a moment and said, "Do you want some of my ${food}?"`,
        `They shared the ${food} and became good friends.`,
      ];
    }
    case 3: // weather
      return [
        `${h.name} went to the ${place} to play with ${h.his} ${thing}.`,
        `Suddenly, ${pick(r, WEATHER)}. ${h.name} was ${bad}.`,
        `${He} ran home as fast as ${h.he} could.`,
        `${h.his === 'her' ? 'Her' : 'His'} ${pick(r, PARENTS)} gave ${h.him} a warm hug, and ${h.name} felt ${good}.`,
      ];
    default: // help a friend
      return [
        `One day, ${h.name} saw ${friend} ${pick(r, SPOTS)}. It looked ${bad}.`,
        `"What is wrong?" asked ${h.name}. "I cannot find my way home," it said.`,
        `${h.name} wanted to help. ${He} took the friend by the hand and walked to the ${place}.`,
        `Soon they found the way home. ${h.name} felt ${good} that ${h.he} could help.`,
      ];
  }
}

/** One story (about 60-110 words). */
export function generateStory(r: () => number): string {
  const h = hero(r);
  const place = pick(r, PLACES);
  const parts = [opening(r, h, place), ...plot(r, h, place)];
  if (r() < 0.5) parts.push(`The end. ${pick(r, LESSONS)}`);
  else parts.push(`From that day on, ${h.name} was never ${pick(r, FEELINGS_BAD)} again.`);
  return parts.join(' ');
}

/** `count` stories from `seed` (the default corpus: 20000 stories, about 1.6M words, from seed 0). */
export function* storyCorpusDocuments(count = 20000, seed = 0): Generator<string> {
  const r = dataRng(seed, 0x57031e5);
  for (let i = 0; i < count; i++) yield generateStory(r);
}

/** The words of the story corpus, lower-cased (to spot made-up words in what a model writes). */
export function storyVocabulary(): Set<string> {
  const words = new Set<string>();
  for (const text of storyCorpusDocuments(5000)) for (const w of storyWords(text)) words.add(w);
  return words;
}

/** The words of a text as storyVocabulary counts them (letters and apostrophes, lower-cased). */
export function storyWords(text: string): string[] {
  return (text.toLowerCase().match(/[a-z]+(?:'[a-z]+)?/g) ?? []);
}
