"""Write the bundled sample dataset: src/trainer_profile_tools/sample_tool_calls.jsonl.

Deterministic (seeded) and standard library only::

    python scripts/make_sample.py            # writes the file beside the profile
    python scripts/make_sample.py --rows 600 --seed 0 --output other.jsonl

Four tools: get_weather(city), calculate(expression), convert_units(value,
from_unit, to_unit) and web_search(query). Each row offers two of them (the one
it needs, plus a distractor) with short descriptions, so rows stay short for a
tiny demo model. Most rows make one call, some make two parallel
get_weather calls, and about 10% are answered in text without a tool.

Every row also has a one-sentence ``reasoning`` field saying why it calls what it
calls: ``tool_use`` alone ignores it, ``think+tool_use`` trains it as the think
block before the call.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "trainer_profile_tools" / "sample_tool_calls.jsonl"


def _tool(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS = {
    "get_weather": _tool(
        "get_weather", "Get the current weather in a city.", {"city": {"type": "string"}}, ["city"]
    ),
    "calculate": _tool(
        "calculate", "Evaluate an arithmetic expression.", {"expression": {"type": "string"}}, ["expression"]
    ),
    "convert_units": _tool(
        "convert_units",
        "Convert a value between units.",
        {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
        ["value", "from_unit", "to_unit"],
    ),
    "web_search": _tool("web_search", "Search the web.", {"query": {"type": "string"}}, ["query"]),
}

CITIES = [
    "Paris",
    "London",
    "Tokyo",
    "Berlin",
    "Madrid",
    "Rome",
    "Oslo",
    "Cairo",
    "Lima",
    "Sydney",
    "Toronto",
    "Seoul",
    "Mumbai",
    "Nairobi",
    "Dublin",
    "Vienna",
    "Lisbon",
    "Prague",
    "Boston",
    "Denver",
]
WEATHER = [
    "What's the weather in {city}?",
    "How is the weather in {city} today?",
    "Is it raining in {city}?",
    "Tell me the weather for {city}.",
    "Weather in {city}, please.",
]
PARALLEL = [
    "What's the weather in {a} and {b}?",
    "Compare the weather in {a} and {b}.",
    "How is the weather in {a} and in {b}?",
]
OPERATIONS = [("+", "plus"), ("-", "minus"), ("*", "times"), ("/", "divided by")]
CALCULATE = ["What is {a} {word} {b}?", "Calculate {a} {op} {b}.", "Compute {a} {op} {b}."]
UNITS = [
    ("km", "miles"),
    ("miles", "km"),
    ("kg", "pounds"),
    ("pounds", "kg"),
    ("celsius", "fahrenheit"),
    ("fahrenheit", "celsius"),
    ("meters", "feet"),
    ("feet", "meters"),
    ("liters", "gallons"),
]
CONVERT = ["Convert {value} {src} to {dst}.", "How many {dst} is {value} {src}?", "{value} {src} in {dst}?"]
TOPICS = [
    "the tallest building in the world",
    "electric cars",
    "the history of tea",
    "solar panels",
    "the next solar eclipse",
    "how bees make honey",
    "the best pizza recipe",
    "black holes",
    "the Olympic games",
    "learning Python",
    "the price of gold",
    "healthy breakfast ideas",
    "the speed of light",
    "ancient Rome",
    "football results",
    "the population of Canada",
]
SEARCH = ["Search the web for {topic}.", "Look up {topic}.", "Find information about {topic}."]
NO_TOOL = [
    ("Hello!", "Hello! How can I help?"),
    ("Hi there", "Hi! How can I help?"),
    ("Good morning", "Good morning! How can I help?"),
    ("Thanks!", "You're welcome!"),
    ("Thank you so much.", "You're welcome!"),
    ("Bye!", "Goodbye!"),
    ("Who are you?", "I am a helpful assistant."),
    ("How are you?", "I'm doing well, thanks! How can I help?"),
]


def _row(question: str, calls: list[tuple[str, dict]] | None, answer: str | None, rng: random.Random) -> dict:
    needed = sorted({name for name, _ in calls or []})
    if len(needed) < 2:
        others = [name for name in TOOLS if name not in needed]
        needed = needed + rng.sample(others, 2 - len(needed))
    rng.shuffle(needed)
    row: dict = {"question": question, "tools": [TOOLS[name] for name in needed]}
    row["reasoning"] = _reasoning(calls)
    if calls is None:
        row["answer"] = answer
    elif len(calls) == 1:
        row["call"] = {"name": calls[0][0], "arguments": calls[0][1]}
    else:
        row["calls"] = [{"name": name, "arguments": arguments} for name, arguments in calls]
    return row


def _reasoning(calls: list[tuple[str, dict]] | None) -> str:
    """Why the row calls what it calls, in one sentence."""
    if not calls:
        return "No tool is needed for this, so I reply directly."
    name, arguments = calls[0]
    if len(calls) > 1:
        cities = " and ".join(arguments["city"] for _, arguments in calls)
        return f"The user asks about two cities, {cities}, so I call get_weather once for each."
    if name == "get_weather":
        return f"The user asks about the weather in {arguments['city']}, so I call get_weather."
    if name == "calculate":
        return f"This is arithmetic, so I call calculate with {arguments['expression']}."
    if name == "convert_units":
        return (
            f"This converts {arguments['value']} {arguments['from_unit']} to {arguments['to_unit']}, "
            "so I call convert_units."
        )
    return f"This needs a web search, so I call web_search for {arguments['query']}."


def make_rows(count: int, seed: int) -> list[dict]:
    """``count`` rows: 10% without a tool, 10% parallel weather calls, the rest one call each."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        kind = index % 10
        if kind == 0:
            question, answer = rng.choice(NO_TOOL)
            rows.append(_row(question, None, answer, rng))
        elif kind == 1:
            a, b = rng.sample(CITIES, 2)
            question = rng.choice(PARALLEL).format(a=a, b=b)
            rows.append(
                _row(question, [("get_weather", {"city": a}), ("get_weather", {"city": b})], None, rng)
            )
        elif kind in (2, 3):
            city = rng.choice(CITIES)
            rows.append(
                _row(rng.choice(WEATHER).format(city=city), [("get_weather", {"city": city})], None, rng)
            )
        elif kind in (4, 5):
            a, b = rng.randint(2, 999), rng.randint(2, 99)
            op, word = rng.choice(OPERATIONS)
            question = rng.choice(CALCULATE).format(a=a, b=b, op=op, word=word)
            rows.append(_row(question, [("calculate", {"expression": f"{a} {op} {b}"})], None, rng))
        elif kind in (6, 7):
            src, dst = rng.choice(UNITS)
            value = rng.choice([rng.randint(1, 500), rng.randint(1, 200) + rng.choice([0.5, 0.25, 0.75])])
            question = rng.choice(CONVERT).format(value=value, src=src, dst=dst)
            arguments = {"value": value, "from_unit": src, "to_unit": dst}
            rows.append(_row(question, [("convert_units", arguments)], None, rng))
        else:
            topic = rng.choice(TOPICS)
            rows.append(
                _row(rng.choice(SEARCH).format(topic=topic), [("web_search", {"query": topic})], None, rng)
            )
    rng.shuffle(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    options = parser.parse_args()
    rows = make_rows(options.rows, options.seed)
    with options.output.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {options.output}")


if __name__ == "__main__":
    main()
