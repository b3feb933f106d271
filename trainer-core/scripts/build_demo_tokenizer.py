"""Build the demo tokenizer that trainer-core ships in ``trainer/models/demo_tokenizer/``.

``trainer run`` without ``--model`` trains a tiny Qwen3-architecture model from
scratch, offline; this is its tokenizer. It is a byte-level BPE (every text
encodes, nothing is ever an unknown token) with a small vocabulary, since the
embedding table is most of a tiny model's parameters.

It is trained on text the project makes itself, nothing downloaded: the built-in
sample dataset rendered as ChatML through every bundled profile (``chat``,
``emoji_think``, ``regime3``), the ``tool_use`` profile's own sample with its
tools block and calls, the profiles' prompts and stop sequences, and a
short English and arithmetic corpus written below, so other word problems
(GSM8K, say) still split into sensible pieces. The same inputs always give the
same files.

Regenerate the shipped files after changing anything here::

    python trainer-core/scripts/build_demo_tokenizer.py

It needs trainer-core, trainer-profile-emoji, trainer-profile-regime3 and
trainer-profile-tools installed, and the ``tokenizers`` and ``transformers`` packages.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "src" / "trainer" / "models" / "demo_tokenizer"
"""Where the package ships the tokenizer files."""

MIN_FREQUENCY = 2
"""A pair becomes a token only when seen this often; no merge rests on a single occurrence."""

VOCAB_SIZE = 2048
"""Target vocabulary size, special tokens and the 256 byte symbols included."""

END_OF_TEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

CONTROL_TOKENS = (END_OF_TEXT, IM_START, IM_END)
"""Special tokens, ids 0, 1 and 2: ``decode(..., skip_special_tokens=True)`` drops them."""

THINK_TOKENS = (THINK_OPEN, THINK_CLOSE)
"""Single tokens, the last two ids, but not special (as in Qwen3): decoding keeps them, they are text."""

MODEL_MAX_LENGTH = 2048
"""The longest sequence the tokenizer reports, the default ``model.max_context_length``."""

# Qwen2/Qwen3's pre-tokenizer: words with their leading space, one digit per token
# (so arithmetic sees digits, not memorised numbers), punctuation runs, newlines.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# trainer's ChatML template (trainer.data.chatml): plain turns as render_chatml writes
# them, tools, calls and results the Hermes / Qwen way. Its {% generation %} blocks
# cover each assistant turn's text and <|im_end|>: what the model learns to write.
from trainer.data.chatml import CHATML_TEMPLATE as CHAT_TEMPLATE  # noqa: E402

ENGLISH_TEXT = """\
The answer is 42. The answer is $18. The answer is 25%.
Step 1: Find the total. Step 2: Subtract the cost. Answer: 7
Nora’s hens lay 14 eggs a day. She uses five for lunch and sells the rest at the village market for $3 \
per egg. How much money does she make every day?
A baker needs 3 cups of flour for each loaf of bread and half as much sugar. How many cups does he need \
for 8 loaves in total?
Peter buys an old boat for $12,000 and spends $4,500 on repairs. He sells it for 20% more than he paid \
in all. How much profit did he make?
Lucy swims 4 laps every morning, 5 days a week. Each lap is 50 meters. How many meters does she swim in \
a week?
A farmer feeds each of his goats two buckets of grain a day, split into two equal meals.
A ticket costs $8 for adults, but children pay only 75% of the adult price. A family of two adults and \
three children goes to the museum. What do they pay?
Oakville has three times as many bikes as Maple Town, and Maple Town has twice as many bikes as Pine \
Creek. If Pine Creek has 15 bikes, how many bikes do the three towns have together?
A printer prints 30 pages per minute, but after 60% of a 500-page job it stops for 10 minutes to cool \
down. How long does the whole job take?
Sara drives for 2 hours at 45 mph, then another 3 hours at 55 mph. What's the total distance she drives?
Omar earns $14 an hour for the first 40 hours of a week and 1.5 times that for every hour of overtime. \
He worked 46 hours this week. How much did he earn?
A video had 120 views on the first day, four times as many on the second day, and 25% fewer on the third \
day than on the second.
Grace bought 2 dozen rolls at $6 per dozen, 3 pies at $11.25 each and a cake for $24. How much did she \
spend?
A lemonade stand costs $40 to set up. Each cup sells for $0.75 and costs $0.25 to make. How many cups \
must be sold to earn back the cost?
A shop sold a quarter of its lamps on Monday, 6 more on Tuesday, and half of what was left on Wednesday.
In a club of 40 members, 30% play chess, 50% of the others play cards, and the rest play neither. What \
percentage of the club plays neither?
An investor can put $6,000 into gold or $9,000 into stocks. Gold may rise 3.5% and stocks 2.2% this year. \
Which gives the larger gain, and by how much?
Two buses leave the station at noon. One travels east at 40 miles per hour and the other west at 50 miles \
per hour. How far apart are they at 3 PM?
Ella gets paid $18 per hour at the library and $25 per hour tutoring. She works 20 hours a week at the \
library and 6 hours a week tutoring. What's her weekly pay?
Ben eats 2 eggs every morning. How many dozens of eggs does he eat in 6 weeks?
A hiker walks 3 miles in the first hour and 2 miles in the second. At what speed must she walk to finish \
a 10-mile trail in 4 hours?
A jug holds 8 liters of juice that is one-fourth water. Another holds 12 liters that is two-thirds water.
Anna is 7 years older than her brother, who is 12. How old will Anna be in 5 years?
Max sells comics. On Friday his first 4 customers buy 2 comics each, and his last 3 customers buy none.
A candle gets 3 centimeters shorter every hour. How much shorter is it after burning from 6:00 PM to \
9:30 PM?
A jacket costs $63 after a 30% discount. What was the price before the discount?
Leo ordered a salad for $9, 3 juices at $2.50 each and some sandwiches at $6 each. He paid $40 in all. \
How many sandwiches did he order?
A runner stops twice on a 26-mile course: after 10 miles and 4 miles before the finish. How far does she \
run between the stops?
A house costs $250,000. The family has saved $50,000 and will pay the rest over 20 years.
The students in class are making a poster. They need 3/4 of a yard of paper for each one, and they have \
12 yards. There are 7 days in a week, 24 hours in a day, 60 minutes in an hour and 12 months in a year.
A quarter is 25 cents, a dime is 10 cents, a nickel is 5 cents and a penny is 1 cent. 100 cents make a \
dollar. A pound is 16 ounces; a foot is 12 inches; a yard is 3 feet; a mile is 5,280 feet.
She earned $1,234.56 last month, about 15.5% more than the month before (0.155 as a decimal).
The ratio is 3:2, the fraction is 1/2, and the product is 6 x 7 = 42. Then 100 / 4 = 25 and 9 - 5 = 4.
Half of 50 is 25, double 12 is 24, a third of 90 is 30, and a quarter of 80 is 20.
First, second, third, fourth, fifth, sixth, seventh, eighth, ninth, tenth; once, twice, thrice.
Zero, one, two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, thirteen, fourteen, \
fifteen, sixteen, seventeen, eighteen, nineteen, twenty, thirty, forty, fifty, sixty, seventy, eighty, \
ninety, hundred, thousand, million, billion, dozen, half, quarter, percent, average, sum, difference.
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday; January, February, March, April, May, \
June, July, August, September, October, November, December; morning, afternoon, evening, night, today.
"Yes," she said. "No," he said! Wait... really? (Maybe.) [Not sure.] {Fine}; it's done: that's all - ok.
It's, don't, can't, won't, isn't, aren't, wasn't, weren't, didn't, doesn't, I'm, I've, I'll, I'd, \
you're, we're, they're, he's, she's, let's. It’s, don’t, can’t, won’t, isn’t, she’s, Tom’s, Mary’s.
We can calculate: 3 + 4 = 7, 7 * 2 = 14, 14 - 4 = 10, 10 / 2 = 5, so the result is 5.
Therefore, the total cost is $45. So, in total, she has 12 left. Thus the final answer is 9.
#### 42
#### 7
#### 1250
The man, the woman, the boy, the girl, the child, the children, the family, the teacher, the student, \
the friend, the farmer, the store, the shop, the school, the class, the team, the company, the city, the \
house, the car, the bus, the train, the bike, the road, the park, the garden, the farm, the market, the \
money, the price, the cost, the profit, the rate, the speed, the time, the distance, the weight, the \
height, the length, the width, the area, the number, the amount, the value, the total, the rest.
He has, she had, they have, we will, it was, there were, there are, there is, each of them, all of them, \
some of them, none of them, both of them, more than, less than, fewer than, as many as, as much as, how \
many, how much, how long, how far, how old, what is, which is, who is, when does, where did, why not.
Buy, bought, sell, sold, pay, paid, spend, spent, earn, earned, save, saved, cost, costs, give, gave, \
given, take, took, taken, make, made, get, got, need, needs, want, wants, use, used, eat, ate, eaten, \
drink, drank, read, write, wrote, walk, walked, run, ran, drive, drove, fly, flew, swim, swam, work, \
worked, play, played, plant, planted, grow, grew, pick, picked, collect, collected, share, shared, split, \
divide, divided, multiply, multiplied, add, added, subtract, subtracted, increase, increased, decrease, \
decreased, remain, remaining, left, lose, lost, find, found, keep, kept, fill, filled, count, counted.
Apples, oranges, bananas, cookies, cakes, pies, candies, eggs, chickens, cows, dogs, cats, birds, fish, \
flowers, trees, books, pages, pens, pencils, boxes, bags, bottles, cups, glasses, plates, tickets, toys, \
shirts, shoes, hats, dollars, cents, hours, minutes, seconds, days, weeks, months, years, miles, meters, \
kilometers, feet, inches, pounds, ounces, liters, gallons, students, people, workers, players, friends.
Good, better, best, bad, worse, worst, big, bigger, biggest, small, smaller, smallest, old, new, young, \
long, short, tall, fast, slow, full, empty, equal, equally, same, different, other, another, every, each, \
only, also, still, again, already, then, than, after, before, during, until, while, because, if, so, but, \
or, and, not, with, without, into, from, for, per, by, at, on, in, of, to, up, down, out, over, under.
"""
"""Hand-written English and arithmetic, so text beyond the sample dataset splits sensibly."""


COMMON_WORDS = """\
a about above across act action activity actually add added adding addition address adult adults after
afternoon again against age ago agree ahead air airport all allow almost alone along already also although
always amount an and animal animals another answer answers any anyone anything apart apartment apple apples
april area arm army around arrive art article as ask asked at attend august aunt available average away
baby back bad bag bags bake baked baker bakery ball banana band bank bar base basket basketball bath be
beach bean beans bear beautiful became because become bed bedroom been before began begin beginning behind
being believe below belt best better between bicycle big bigger bill billion bird birds birthday bit black
blanket block blue board boat body book books born borrow both bottle bottles bottom bought bowl box boxes
boy boys brain bread break breakfast brick bridge bright bring brother brothers brought brown bucket budget
build building built bunch burn bus business busy but butter buy buying by
cake cakes calculate calculated call called came camera camp can candle candy cap capacity car card cards
care carry case cash cat catch cats cause cent center cents certain chair chance change chapter charge cheap
check cheese chicken chickens child children chocolate choose chose church circle city class classroom clean
clear clock close closed clothes cloud club coach coat coffee coin coins cold collect collected collection
color come comes coming common company compare complete completed computer contain container contains
continue cook cookie cookies cool copy corn corner correct cost costs could count counted country couple
course cousin cover cow cows cream create crowd cup cups current customer customers cut
daily dance dark data daughter day days dead deal dear december decide decided deep degree degrees deliver
delivered department deposit describe desk dessert did die difference different dinner direction dirty
discount discover distance divide divided do doctor does dog dogs doing dollar dollars done door double down
dozen dozens draw drawer dress drink drinks drive driver drop dry during
each ear early earn earned earns earth east easy eat eaten eating edge egg eggs eight eighteen eighty either
electric eleven else empty end energy engine enough enter entire equal equally even evening event ever every
everyone everything exactly example except exercise expect expensive extra eye eyes
face fact factory fair fall family far farm farmer fast father favorite february fee feed feel feet fell
fence few field fifteen fifth fifty fight figure fill final finally find fine finish finished fire first
fish fit five fix flat floor flour flower flowers fly follow food foot football for force forest forget form
forty found four fourteen fourth free fresh friday friend friends from front fruit full fun funny future
game games garden gas gave get gets getting gift girl girls give given gives glass glasses go goal goes
going gold gone good got grade gram grams grand grandfather grandmother grass gray great green grew ground
group grow grows guess guest gym
had hair half hall hand hands happen happy hard has hat have having he head health hear heard heart heavy
height held hello help her here herself high hill him himself his history hit hold hole holiday home
homework hope horse hospital hot hotel hour hours house houses how however hundred hungry hurt husband
ice idea if important in inch inches include income increase increased inside instead interest into is
island it item items its itself
jacket jar job join juice july jump june just
keep kept key kid kids kilogram kilograms kilometer kilometers kind kitchen knew know known
lake land language large last late later laugh law lay lead learn least leave left leg length less lesson
let letter level library life light like line list listen liter liters little live lived long look lost lot
loud love low lunch
machine made magazine mail main make makes making man many map march mark market match math matter may maybe
me meal meals mean measure meat meet meeting member members men meter meters middle might mile miles milk
million mind minus minute minutes miss model mom moment monday money month months moon more morning most
mother mountain mouth move movie much music must my
name near nearly need needed needs neighbor never new news next nice night nine nineteen ninety no noon
north nose not note nothing notice november now number numbers nurse
object ocean october of off offer office often oil old on once one only open or orange order other our out
outside over own owner
pack package page pages paid paint pair pairs paper parent parents park part party pass past pay paying pays
peach pen pencil pencils people pepper per percent percentage perfect perhaps person pet phone photo pick
picked picture pie piece pieces pig pink pizza place plan plane plant planted plate plates play played
player players please plus pocket point pool poor popular possible post pot potato pound pounds pour power
present pretty price prices print prize problem produce product profit program project pull purple push put
quarter quarters question questions quick quickly quiet quite
race radio rain raise ran rate rather reach read ready real really reason receive received recipe red remain
remaining remember rent repair rest restaurant result return rice rich ride right ring river road rock roll
room rope round row rule run running
sad safe said salary sale sales salt same sand saturday save saved saving saw say school science score sea
season seat second seconds see seed seeds seem seen sell selling sells send september serve set seven
seventeen seventy several shape share shared she sheep shelf ship shirt shirts shoe shoes shop shopping
short should show side sign simple since sing single sister sit six sixteen sixty size skirt sleep slice
slices slow small smaller snow so soap soccer sock socks sold some someone something sometimes son song soon
sort sound soup south space speed spend spent split sport spring square stair stamp stand star start started
state station stay step steps still stock stone stop store story street strong student students study
subtract such sugar sum summer sun sunday supply sure surface sweater sweet swim system
table take taken takes talk tall tank tax tea teach teacher team tell ten tent term test than thank that the
their them themselves then there these they thing things think third thirteen thirty this those though
thousand three through throw thursday ticket tickets time times tire to today together told tomato tomorrow
too took tool top total town toy toys track trade train travel tree trees trip truck true try tuesday turn
twelve twenty twice two type
uncle under understand until up upon us use used uses usual usually
vacation value van vegetable very video village visit voice vote
wait walk walked wall want wanted wants war warm was wash watch water way we wear weather wednesday week
weekend weekly weeks weigh weight well went were west what wheel when where whether which while white who
whole why wide width wife will win wind window winter wish with without woman women won wood word words work
worked worker workers works world would write writer wrong wrote
yard yards year years yellow yes yesterday yet you young your yourself
zero zoo
"""
"""Everyday English words, in alphabetical order; each is learned lower-case and capitalised."""


def profile_texts() -> Iterator[str]:
    """The sample dataset rendered as ChatML through every bundled profile, and the profiles' own strings."""
    from trainer.config.schema import ProfileConfig
    from trainer.data.chatml import render_chatml
    from trainer.data.conversation import build_messages
    from trainer.data.sample import sample_rows
    from trainer.profiles.base import DataProfile
    from trainer.profiles.chat import ChatProfile

    try:
        from trainer_profile_emoji import EmojiThinkProfile
        from trainer_profile_regime3 import Regime3Profile
        from trainer_profile_tools import ToolUseProfile
    except ImportError as exc:
        raise SystemExit(
            f"the demo tokenizer is trained on every bundled profile, but {exc.name} is not installed. "
            "Install it with: pip install -e trainer-profile-emoji -e trainer-profile-regime3 "
            "-e trainer-profile-tools"
        ) from None

    base_prompt = ProfileConfig().system_prompt
    profiles: list[DataProfile] = [ChatProfile(), EmojiThinkProfile(), Regime3Profile()]
    rows = sample_rows()
    for profile in profiles:
        stops = profile.get_stop_sequences()
        yield profile.description
        yield profile.format_system_prompt("")
        yield "\n".join([*stops, *profile.penalized_strings])
        for row in rows:
            yield render_chatml(build_messages(profile, row, base_prompt, stops))
    yield from tool_texts(ToolUseProfile(), base_prompt)


def tool_texts(profile: Any, base_prompt: str) -> Iterator[str]:
    """The tool_use sample as the demo's template renders it: tools block, calls, replies."""
    from trainer.data.chat_template import render_conversation
    from trainer.data.conversation import build_conversation
    from trainer.data.template_text import TemplateText

    template = TemplateText(CHAT_TEMPLATE, {"eos_token": IM_END, "pad_token": END_OF_TEXT})
    with open(profile.default_dataset(), encoding="utf-8") as lines:
        for line in lines:
            conversation = build_conversation(profile, json.loads(line), base_prompt, [])
            yield render_conversation(conversation.messages, template, tools=conversation.tools).text


def arithmetic_texts() -> Iterator[str]:
    """Equations, money and percentages in the shapes worked solutions use."""
    for a in range(0, 13):
        for b in range(1, 13):
            yield f"{a} + {b} = {a + b}, {a} * {b} = {a * b}, {a * b} / {b} = {a}, {a + b} - {b} = {a}."
    for cents in range(0, 100, 5):
        yield f"It costs ${cents // 10}.{cents:02d}, and {cents}% of $200 is ${2 * cents}."


def word_texts() -> Iterator[str]:
    """Each common word with a leading space, as it reads inside a sentence, lower-case and capitalised."""
    words = COMMON_WORDS.split()
    yield " " + " ".join(words)
    yield " " + " ".join(word.capitalize() for word in words)


def training_texts() -> list[str]:
    """Everything the tokenizer learns from, in a fixed order."""
    return [*profile_texts(), *arithmetic_texts(), *ENGLISH_TEXT.splitlines(), *word_texts()]


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` of ``vocab_size`` tokens trained on ``texts``.

    Ids: the control tokens (0-2), the 256 byte symbols, the learned merges,
    and the two think tokens last.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    # No normalizer: decode(encode(text)) gives back exactly the text, Unicode form included.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(THINK_TOKENS),
        min_frequency=MIN_FREQUENCY,
        show_progress=False,
        # The trainer keeps them whole in the training text and registers them as special.
        special_tokens=[AddedToken(token, special=True, normalized=False) for token in CONTROL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Added after training: the trainer would mark them special.
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in THINK_TOKENS])
    return tokenizer


def build_demo_tokenizer(output_dir: Path = OUTPUT_DIR) -> Path:
    """Train the demo tokenizer and write it to ``output_dir`` with ``save_pretrained``.

    :return: ``output_dir``.
    """
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(training_texts()),
        # Generation stops at the end of the assistant turn; padding is never a token the model writes.
        eos_token=IM_END,
        pad_token=END_OF_TEXT,
        chat_template=CHAT_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(output_dir))
    # transformers 5 writes its class name, TokenizersBackend, which transformers 4
    # lacks; both load PreTrainedTokenizerFast from tokenizer.json unchanged.
    config_file = output_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    return output_dir


def main(argv: list[str] | None = None) -> int:
    """Command line: build into ``--output`` (default: the package's shipped folder)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help=f"default: {OUTPUT_DIR}")
    args = parser.parse_args(argv)
    output = build_demo_tokenizer(args.output)
    saved = json.loads((output / "tokenizer.json").read_text(encoding="utf-8"))
    size = len(saved["model"]["vocab"].keys() | {token["content"] for token in saved["added_tokens"]})
    files = ", ".join(f"{path.name} ({path.stat().st_size:,} bytes)" for path in sorted(output.iterdir()))
    print(f"wrote {output}: {size} tokens; {files}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
