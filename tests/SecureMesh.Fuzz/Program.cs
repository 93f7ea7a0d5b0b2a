using System.Runtime.InteropServices;
using SecureMesh.Fuzz.Targets;
using SharpFuzz;

namespace SecureMesh.Fuzz;

/// <summary>
/// The long-run fuzz driver. See README.md:
/// <code>
/// SecureMesh.Fuzz TARGET SECONDS [SEED]   CsCheck mutation fuzzing for a bounded time (no AFL++ needed)
/// SecureMesh.Fuzz afl TARGET              run under afl-fuzz (SharpFuzz, out of process); the input comes on stdin
/// SecureMesh.Fuzz seeds TARGET DIR        write the target's seed inputs into DIR
/// SecureMesh.Fuzz replay TARGET PATH...   run saved inputs (files or folders) and show what each one does
/// SecureMesh.Fuzz list                    the targets
/// </code>
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args is not ["afl", ..])
        {
            GiveInstrumentationAMap();
        }
        try
        {
            return args switch
            {
                ["list"] => List(),
                ["afl", var name] => Afl(FuzzTargets.Get(name)),
                ["seeds", var name, var dir] => WriteSeeds(FuzzTargets.Get(name), dir),
                ["replay", var name, .. var paths] when paths.Length > 0 => Replay(FuzzTargets.Get(name), paths),
                [var name, var seconds] when FuzzTargets.Find(name) is { } target && double.TryParse(seconds, out var s) && s > 0 =>
                    FuzzWithCsCheck(target, TimeSpan.FromSeconds(s), null),
                [var name, var seconds, var seed] when FuzzTargets.Find(name) is { } target && double.TryParse(seconds, out var s) && s > 0 =>
                    FuzzWithCsCheck(target, TimeSpan.FromSeconds(s), seed),
                _ => Usage(),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    /// <summary>
    /// SharpFuzz's instrumented code records every branch in a coverage map that only <see cref="Fuzzer"/> sets up; the
    /// instrumented SecureMesh.Core.dll that run-fuzz.sh builds would fault on the first branch without one. This gives
    /// it a map that nobody reads, so the same build also writes seeds and replays findings.
    /// </summary>
    private static unsafe void GiveInstrumentationAMap()
    {
        if (SharpFuzz.Common.Trace.SharedMem == null)
        {
            SharpFuzz.Common.Trace.SharedMem = (byte*)NativeMemory.AllocZeroed(1 << 16);
        }
    }

    private static int List()
    {
        foreach (var target in FuzzTargets.All)
        {
            Console.WriteLine($"{target.Name,-10} {target.Description}");
        }
        return 0;
    }

    /// <summary>
    /// Out of process: SharpFuzz keeps a fork-server stand-in here and runs the inputs in a child dotnet process, which
    /// it restarts when an input kills it (a stack overflow) or afl-fuzz kills it for a timeout (a hang).
    /// </summary>
    private static int Afl(FuzzTarget target)
    {
        // afl-fuzz keeps the input of a crash but not the exception: run-fuzz.sh names a file to write it to.
        var log = Environment.GetEnvironmentVariable("SECUREMESH_FUZZ_EXCEPTION_LOG");
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            try
            {
                target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
            }
            catch (Exception e) when (log is not null && Record(log, buffer.ToArray(), e))
            {
                throw;
            }
        });
        return 0;
    }

    private static bool Record(string log, byte[] input, Exception e)
    {
        File.AppendAllText(log, $"input ({input.Length} bytes) {FuzzRunner.Hex(input, 4096)}{Environment.NewLine}{e}{Environment.NewLine}{Environment.NewLine}");
        return false;
    }

    private static int WriteSeeds(FuzzTarget target, string dir)
    {
        Directory.CreateDirectory(dir);
        var seeds = target.Seeds();
        for (var i = 0; i < seeds.Count; i++)
        {
            File.WriteAllBytes(Path.Combine(dir, $"seed-{i:D2}"), seeds[i]);
        }
        Console.WriteLine($"{seeds.Count} seeds for {target.Name} in {dir}");
        return 0;
    }

    private static int Replay(FuzzTarget target, string[] paths)
    {
        var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p])
            .Where(f => !Path.GetFileName(f).Equals("README.txt", StringComparison.Ordinal));
        var findings = 0;
        foreach (var file in files)
        {
            var input = File.ReadAllBytes(file);
            try
            {
                var accepted = target.Run(input);
                Console.WriteLine($"{file}: {(accepted ? "accepted" : "refused")}");
            }
            catch (Exception e)
            {
                findings++;
                Console.WriteLine($"{file}: FINDING ({input.Length} bytes) {FuzzRunner.Hex(input, 256)}");
                Console.WriteLine(e);
            }
        }
        return findings == 0 ? 0 : 1;
    }

    private static int FuzzWithCsCheck(FuzzTarget target, TimeSpan duration, string? seed)
    {
        var maxInput = TimeSpan.FromSeconds(double.TryParse(Environment.GetEnvironmentVariable("SECUREMESH_FUZZ_MAX_INPUT_SECONDS"), out var m) ? m : 2);
        try
        {
            var result = FuzzRunner.Run(target, duration, maxInput, seed, threads: 1);
            Console.WriteLine(result);
            Console.WriteLine($"execs_done {result.Executions}");
            return 0;
        }
        catch (FuzzFindingException e)
        {
            Console.WriteLine("FINDING " + e.Message);
            return 1;
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("""
            usage: SecureMesh.Fuzz TARGET SECONDS [SEED]   CsCheck mutation fuzzing for a bounded time
                   SecureMesh.Fuzz afl TARGET              under afl-fuzz (input on stdin)
                   SecureMesh.Fuzz seeds TARGET DIR        write the seed inputs
                   SecureMesh.Fuzz replay TARGET PATH...   run saved inputs (files or folders)
                   SecureMesh.Fuzz list                    the targets
            """);
        return 2;
    }
}
