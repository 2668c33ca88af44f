// A real headless browser for the run report: a screenshot of the HTML file
// and a count of what it painted, so a test sees what the operator sees
// (one bar per consumer, the dual-active window) rather than what the markup says.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PNG } from "pngjs";

const SCREENSHOT_TIMEOUT_MS = 60_000;

function executable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/** Chromium from PATH, else Debian's /usr/bin/chromium; undefined when neither is installed. */
export function chromiumPath(): string | undefined {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
        for (const name of ["chromium", "chromium-browser"]) {
            if (executable(path.join(dir, name))) return path.join(dir, name);
        }
    }
    return executable("/usr/bin/chromium") ? "/usr/bin/chromium" : undefined;
}

/**
 * Renders `htmlFile` in a `size` window into `pngFile`. One CSS pixel is one
 * image pixel and colors are plain sRGB, so a color of the page comes out as
 * the very same RGB. Throws with Chromium's stderr when no PNG appears.
 */
export function screenshot(htmlFile: string, pngFile: string, size: { width: number; height: number }): void {
    const chromium = chromiumPath();
    if (!chromium) throw new Error("screenshot: chromium is not installed (apt-get install -y --no-install-recommends chromium)");
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "report-chromium-"));
    const out = path.resolve(pngFile);
    fs.rmSync(out, { force: true });
    try {
        const r = spawnSync(
            chromium,
            [
                "--headless",
                // Root (as in the lab and CI containers) cannot use Chromium's sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--force-color-profile=srgb",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                `--user-data-dir=${profile}`,
                `--window-size=${Math.ceil(size.width)},${Math.ceil(size.height)}`,
                `--screenshot=${out}`,
                `file://${path.resolve(htmlFile)}`,
            ],
            { encoding: "utf8", timeout: SCREENSHOT_TIMEOUT_MS, env: { ...process.env, HOME: profile } },
        );
        if (!fs.existsSync(out) || fs.statSync(out).size === 0) {
            // Without a session bus Chromium logs dbus errors on every start: they never explain a failure.
            const tail = (r.stderr ?? "")
                .split("\n")
                .filter((l) => l.trim() && !/dbus/i.test(l))
                .slice(-15)
                .join("\n");
            const why = r.error ? `${r.error.message}` : r.signal ? `killed by ${r.signal}` : `exit code ${r.status}`;
            throw new Error(`screenshot: chromium wrote no ${out} for ${htmlFile} (${why}):\n${tail}`);
        }
    } finally {
        fs.rmSync(profile, { recursive: true, force: true });
    }
}

export interface PngAnalysis {
    width: number;
    height: number;
    /** Maximal runs of consecutive pixel rows holding at least `minPixelsPerRow` pixels of the rollout color. */
    rolloutBands: number;
    /** Pixels of the shading color anywhere in the image. */
    shadingPixels: number;
}

function rgb(hex: string): [number, number, number] {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) throw new Error(`analyzePng: ${JSON.stringify(hex)} is not a #rrggbb color`);
    return [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)];
}

/** Counts the report's rollout bands and shading pixels; a channel may be off by `tolerance`. */
export function analyzePng(
    pngFile: string,
    colors: { rollout: string; shading: string },
    opts: { tolerance?: number; minPixelsPerRow?: number } = {},
): PngAnalysis {
    const { tolerance = 2, minPixelsPerRow = 20 } = opts;
    const png = PNG.sync.read(fs.readFileSync(pngFile));
    const rollout = rgb(colors.rollout);
    const shading = rgb(colors.shading);
    const { width, height, data } = png;
    const near = (i: number, c: [number, number, number]) =>
        data[i + 3] > 0 && Math.abs(data[i] - c[0]) <= tolerance && Math.abs(data[i + 1] - c[1]) <= tolerance && Math.abs(data[i + 2] - c[2]) <= tolerance;
    let rolloutBands = 0;
    let shadingPixels = 0;
    let inBand = false;
    for (let y = 0; y < height; y++) {
        let inRow = 0;
        for (let x = 0; x < width; x++) {
            const i = (y * width + x) * 4;
            if (near(i, rollout)) inRow++;
            else if (near(i, shading)) shadingPixels++;
        }
        const band = inRow >= minPixelsPerRow;
        if (band && !inBand) rolloutBands++;
        inBand = band;
    }
    return { width, height, rolloutBands, shadingPixels };
}
