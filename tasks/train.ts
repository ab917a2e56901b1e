/**
 * `deno task train`: trains the text-to-flower GAN. Without --data it trains on
 * ../shared/oxford102 when that folder exists, else on the built-in synthetic set.
 * Run with --help for the flags.
 */
import { train } from "../pipeline/train.ts";
import { ensureSyntheticData } from "../pipeline/synthetic.ts";
import { petalError, PetalFailure } from "../pipeline/errors.ts";
import { LOSS_KINDS, type LossKind, type SizeName, SIZES } from "../stages/config.ts";
import {
  DEFAULT_DATA,
  exists,
  main,
  numberFlag,
  orFail,
  parse,
  selectBackend,
  SYNTHETIC_DIR,
} from "./cli.ts";
import { progressLine } from "./progress.ts";

export const TRAIN_HELP = `deno task train [flags]
  --data DIR        Reed-layout folder (images/ + text_c10/); default ../shared/oxford102,
                    else the built-in synthetic set
  --synthetic       train on the built-in synthetic flowers (written to .cache/synthetic)
  --dictionary DIR  use the task's dictionary/ (word2Id.npy, id2Word.npy) as vocabulary
  --out DIR         where checkpoint, losses.csv and samples/ go (default runs/latest)
  --epochs N        stop after N epochs (default 20)
  --minutes M       stop after M minutes (whichever budget ends first)
  --steps N         stop after N steps in all
  --resume          continue from DIR/checkpoint.petal exactly where it stopped
  --size S          model size: small (default) or reed
  --batch N         batch size (default 32)
  --loss L          bce (GAN-CLS, default), hinge or wgan-gp
  --lr X            Adam learning rate of G and D (default 5e-4 small, 2e-4 reed)
  --pretrain-text N contrastive (CLIP-style) pre-training of the text encoder, N steps,
                    before a fresh run
  --no-d-bn         discriminator without batch norm
  --no-interp       turn off GAN-INT interpolated-text loss
  --ema X           EMA decay of the sampling generator (default 0.999)
  --seed N          random seed (default 1)
  --cache DIR       decoded-image cache (default .cache/images)
  --backend B       auto (default), tensorflow, webgpu, native, wasm or cpu
  --quiet           no progress bar
  --help`;

if (import.meta.main) {
  await main(async () => {
    const { values } = parse("train", {
      data: { type: "string" },
      synthetic: { type: "boolean", default: false },
      dictionary: { type: "string" },
      out: { type: "string", default: "runs/latest" },
      epochs: { type: "string" },
      minutes: { type: "string" },
      steps: { type: "string" },
      resume: { type: "boolean", default: false },
      size: { type: "string", default: "small" },
      batch: { type: "string" },
      loss: { type: "string", default: "bce" },
      lr: { type: "string" },
      "no-interp": { type: "boolean", default: false },
      "no-d-bn": { type: "boolean", default: false },
      "pretrain-text": { type: "string" },
      ema: { type: "string" },
      seed: { type: "string" },
      cache: { type: "string", default: ".cache/images" },
      backend: { type: "string", default: "auto" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    });
    if (values.help) {
      console.log(TRAIN_HELP);
      return;
    }
    if (!(SIZES as readonly string[]).includes(values.size)) {
      throw new PetalFailure(
        petalError("BadArgument", "--size", `unknown size "${values.size}"`, "use small or reed"),
      );
    }
    if (!(LOSS_KINDS as readonly string[]).includes(values.loss)) {
      throw new PetalFailure(
        petalError(
          "BadArgument",
          "--loss",
          `unknown loss "${values.loss}"`,
          "use bce, hinge or wgan-gp",
        ),
      );
    }
    await selectBackend(values.backend);
    let data = values.data;
    if (values.synthetic) {
      data = await ensureSyntheticData(SYNTHETIC_DIR);
      console.log(`data: ${data} (built-in synthetic flowers)`);
    } else if (!data) {
      if (await exists(`${DEFAULT_DATA}/images`)) {
        data = DEFAULT_DATA;
        console.log(`data: ${data} (Oxford-102, found beside the project)`);
      } else {
        data = await ensureSyntheticData(SYNTHETIC_DIR);
        console.log(`data: ${data} (built-in synthetic flowers: ../shared/oxford102 is absent)`);
      }
    } else console.log(`data: ${data}`);
    const lr = values.lr === undefined ? undefined : numberFlag("lr", values.lr, 2e-4);
    const showBar = !values.quiet && Deno.stderr.isTerminal();
    let stopRequested = false;
    const onSigint = () => {
      if (stopRequested) Deno.exit(130);
      stopRequested = true;
      console.error(
        "\nstopping: finishing this step and saving a checkpoint (Ctrl-C again to quit now)",
      );
    };
    Deno.addSignalListener("SIGINT", onSigint);
    let lastLine = 0;
    const result = await orFail(train({
      data,
      out: values.out,
      size: values.size as SizeName,
      epochs: values.epochs === undefined
        ? (values.minutes || values.steps ? undefined : 20)
        : numberFlag("epochs", values.epochs, 20),
      minutes: values.minutes === undefined ? undefined : numberFlag("minutes", values.minutes, 0),
      maxSteps: values.steps === undefined ? undefined : numberFlag("steps", values.steps, 0),
      resume: values.resume,
      dictionary: values.dictionary,
      pretrainSteps: values["pretrain-text"] === undefined
        ? 0
        : numberFlag("pretrain-text", values["pretrain-text"], 0),
      cacheDir: values.cache,
      train: {
        loss: values.loss as LossKind,
        interpolate: !values["no-interp"],
        dBatchNorm: !values["no-d-bn"],
        ...(values.batch ? { batchSize: numberFlag("batch", values.batch, 32) } : {}),
        ...(lr ? { lrG: lr, lrD: lr } : {}),
        ...(values.ema ? { emaDecay: numberFlag("ema", values.ema, 0.999) } : {}),
        ...(values.seed ? { seed: numberFlag("seed", values.seed, 1) } : {}),
      },
      shouldStop: () => stopRequested,
      log: (line) => console.log(showBar ? `\r\x1b[K${line}` : line),
      onStep: (s) => {
        if (values.quiet) return;
        const line = progressLine(s);
        if (showBar) Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
        else if (s.elapsed - lastLine >= 10 || s.step === s.totalSteps) {
          lastLine = s.elapsed;
          console.log(line);
        }
      },
    }));
    Deno.removeSignalListener("SIGINT", onSigint);
    if (showBar) console.error("");
    console.log(
      `stopped by ${result.stoppedBy} at step ${result.progress.step} (epoch ${result.progress.epoch}), ` +
        `${result.imagesPerSecond.toFixed(2)} img/s; checkpoint ${result.checkpoint}`,
    );
  });
}
