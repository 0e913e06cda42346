// The Dockerfile as stages of instructions (dockerfile-ast), for the policy rules and the image-layout test.
import { type Dockerfile, type From, type Instruction, ModifiableInstruction } from 'dockerfile-ast';

export interface Stage {
  name: string | null;
  from: From;
  instructions: Instruction[];
}

/** The stages in order, each with its instructions (FROM excluded). */
export function stages(dockerfile: Dockerfile): Stage[] {
  const result: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From;
      result.push({ name: from.getBuildStage(), from, instructions: [] });
    } else {
      result.at(-1)?.instructions.push(instruction);
    }
  }
  return result;
}

export function finalStage(dockerfile: Dockerfile): Stage | undefined {
  return stages(dockerfile).at(-1);
}

export const keyword = (stage: Stage, name: string) =>
  stage.instructions.filter((i) => i.getKeyword() === name);
export const text = (instruction: Instruction) => instruction.getRawArgumentsContent() ?? '';
export const flags = (instruction: Instruction) =>
  instruction instanceof ModifiableInstruction ? instruction.getFlags() : [];
export const fromFlag = (instruction: Instruction) =>
  flags(instruction)
    .find((flag) => flag.getName() === 'from')
    ?.getValue() ?? undefined;
/** Flags and arguments, as written. */
export const full = (instruction: Instruction) =>
  [...flags(instruction).map((flag) => `--${flag.getName()}=${flag.getValue()}`), text(instruction)]
    .join(' ')
    .trim();
