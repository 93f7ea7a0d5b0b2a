using System.Diagnostics;
using CsCheck;

namespace SecureMesh.Fuzz.Targets;

/// <summary>What a bounded run did.</summary>
internal sealed record FuzzRunResult(string Target, long Executions, long Accepted, TimeSpan Elapsed, TimeSpan SlowestInput)
{
    public override string ToString() =>
        $"{Target}: {Executions:N0} executions ({Accepted:N0} accepted) in {Elapsed.TotalSeconds:F1} s, " +
        $"{Executions / Math.Max(Elapsed.TotalSeconds, 0.001):N0}/s, slowest input {SlowestInput.TotalMilliseconds:F1} ms";
}

/// <summary>
/// Runs a target under CsCheck for a bounded time: the seeds first, then random bytes and mutated seeds (bit flips,
/// byte sets, truncations, insertions, deletions, overwrites with boundary values and long varints, duplicated slices).
/// A finding fails with the shrunk input in hex; an input slower than the per-input bound is a finding; a run that
/// does not end (a hang) fails with the input it was stuck on.
/// </summary>
internal static class FuzzRunner
{
    public static FuzzRunResult Run(FuzzTarget target, TimeSpan duration, TimeSpan maxInputTime, string? seed = null, int threads = 1)
    {
        var executions = 0L;
        var accepted = 0L;
        var slowestTicks = 0L;
        byte[]? current = null;

        void Execute(byte[] input)
        {
            Volatile.Write(ref current, input);
            var start = Stopwatch.GetTimestamp();
            var ok = target.Run(input);
            var elapsed = Stopwatch.GetElapsedTime(start);
            Interlocked.Increment(ref executions);
            if (ok)
            {
                Interlocked.Increment(ref accepted);
            }
            InterlockedMax(ref slowestTicks, elapsed.Ticks);
            if (elapsed > maxInputTime)
            {
                throw Expected.Finding($"one input took {elapsed.TotalMilliseconds:F0} ms (bound {maxInputTime.TotalMilliseconds:F0} ms)");
            }
        }

        var seeds = target.Seeds();
        var stopwatch = Stopwatch.StartNew();
        foreach (var input in seeds)
        {
            try
            {
                Execute(input);
            }
            catch (Exception e)
            {
                throw new FuzzFindingException($"{target.Name}: seed {Hex(input, 64)} fails: {e.Message}", e);
            }
        }
        // The seeds ran cold (JIT included): the slowest input reported is measured from here on.
        slowestTicks = 0;
        var gen = Inputs(seeds);
        var seconds = Math.Max(1, (int)Math.Ceiling(duration.TotalSeconds));
        Exception? failure = null;
        var sampling = new Thread(() =>
        {
            try
            {
                gen.Sample(Execute, writeLine: null, seed: seed, iter: long.MaxValue, time: seconds, threads: threads, print: input => Hex(input));
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "fuzz " + target.Name,
        };
        sampling.Start();
        // Shrinking a finding may take a while; a run still busy long after its time is stuck on one input.
        var grace = TimeSpan.FromSeconds(60) + duration + (8 * maxInputTime);
        if (!sampling.Join(grace))
        {
            var stuck = Volatile.Read(ref current);
            throw new FuzzFindingException($"{target.Name}: not done {grace.TotalSeconds:F0} s after the start (a hang?); the input running {(stuck is null ? "none" : Hex(stuck))}");
        }
        if (failure is not null)
        {
            throw new FuzzFindingException($"{target.Name}: {failure.Message}", failure);
        }
        return new FuzzRunResult(target.Name, executions, accepted, stopwatch.Elapsed, TimeSpan.FromTicks(slowestTicks));
    }

    /// <summary>Random bytes (one part in five) and mutated seeds.</summary>
    public static Gen<byte[]> Inputs(IReadOnlyList<byte[]> seeds) =>
        Gen.Frequency(
            (1, Gen.Byte.Array[0, 256]),
            (4, Gen.Select(Gen.Int[0, seeds.Count - 1], Mutation.Array[1, 6], (index, mutations) => Mutate(seeds[index], mutations))));

    private static readonly Gen<Mutation> Mutation =
        Gen.Select(Gen.Int[0, 6], Gen.Int.Positive, Gen.Byte, Gen.Int[0, 63], (kind, position, value, count) => new Mutation(kind, position, value, count));

    /// <summary>Boundary values for length fields (u16 big-endian and others) and varints (too long, not minimal, over 32 and 64 bits).</summary>
    private static readonly byte[][] Interesting =
    [
        [0x00], [0xFF], [0x7F], [0x80], [0x01],
        [0x00, 0x00], [0xFF, 0xFF], [0xFF, 0xFE], [0x7F, 0xFF], [0x80, 0x00], [0x00, 0x01], [0x01, 0x00], [0x10, 0x00],
        [0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0x80, 0x00, 0x00, 0x00], [0x00, 0x01, 0x00, 0x00],
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0, 0, 0, 0, 0],
        [0x80, 0x00], [0xFF, 0xFF, 0xFF, 0xFF, 0x0F], [0xFF, 0xFF, 0xFF, 0xFF, 0x10], [0x80, 0x80, 0x80, 0x80, 0x08],
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
        [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ];

    public static byte[] Mutate(byte[] seed, Mutation[] mutations)
    {
        var bytes = new List<byte>(seed);
        foreach (var m in mutations)
        {
            var at = bytes.Count == 0 ? 0 : m.Position % bytes.Count;
            var atOrEnd = m.Position % (bytes.Count + 1);
            switch (m.Kind)
            {
                case 0 when bytes.Count > 0:
                    bytes[at] ^= (byte)(1 << (m.Value & 7));
                    break;
                case 1 when bytes.Count > 0:
                    bytes[at] = m.Value;
                    break;
                case 2:
                    bytes.RemoveRange(atOrEnd, bytes.Count - atOrEnd);
                    break;
                case 3:
                    bytes.InsertRange(atOrEnd, Enumerable.Repeat(m.Value, m.Count + 1));
                    break;
                case 4 when bytes.Count > 0:
                    bytes.RemoveRange(at, Math.Min(m.Count + 1, bytes.Count - at));
                    break;
                case 5:
                    var value = Interesting[m.Value % Interesting.Length];
                    for (var i = 0; i < value.Length; i++)
                    {
                        if (atOrEnd + i < bytes.Count)
                        {
                            bytes[atOrEnd + i] = value[i];
                        }
                        else
                        {
                            bytes.Add(value[i]);
                        }
                    }
                    break;
                case 6 when bytes.Count > 0:
                    var slice = bytes.GetRange(at, Math.Min(m.Count + 1, bytes.Count - at));
                    bytes.InsertRange(m.Value % (bytes.Count + 1), slice);
                    break;
            }
        }
        return [.. bytes];
    }

    public static string Hex(byte[] input, int max = int.MaxValue) =>
        input.Length <= max ? Convert.ToHexString(input) : $"{Convert.ToHexString(input, 0, max)}... ({input.Length} bytes)";

    private static void InterlockedMax(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }
            seen = previous;
        }
    }
}

/// <summary>One mutation of a seed; positions wrap around the current length, so any value applies.</summary>
internal readonly record struct Mutation(int Kind, int Position, byte Value, int Count);
