// Validates Adaptive Cards with the official JavaScript library (npm "adaptivecards").
// Reads a JSON array of cards on stdin; prints a JSON array with each card's problems.
const AC = require("adaptivecards/dist/adaptivecards.js");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((json) => {
    const problems = [];
    const context = new AC.SerializationContext();
    const card = new AC.AdaptiveCard();
    card.parse(json, context);
    for (let i = 0; i < context.eventCount; i++) {
      const e = context.getEventAt(i);
      problems.push(`parse: ${e.message}`);
    }
    for (const e of card.validateProperties().validationEvents) {
      problems.push(`validate: ${e.message}`);
    }
    return problems;
  });
  process.stdout.write(JSON.stringify(results));
});
