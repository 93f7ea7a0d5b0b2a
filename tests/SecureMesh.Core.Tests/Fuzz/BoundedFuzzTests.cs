using System.Globalization;
using SecureMesh.Fuzz.Targets;
using Xunit.Abstractions;

namespace SecureMesh.Core.Tests.Fuzz;

/// <summary>The fuzz tests take turns (one collection), so that together they use one core and leave the other to the rest.</summary>
[CollectionDefinition(nameof(FuzzCollection))]
public sealed class FuzzCollection;

/// <summary>
/// The CI part of the fuzzing (issue 9): each parser of peer bytes runs under CsCheck for a bounded time on random bytes
/// and mutated valid encodings, and may only refuse with its own protocol error, within a bounded time per input.
/// <c>SECUREMESH_FUZZ_SECONDS</c> sets the time per target (default 4), <c>SECUREMESH_FUZZ_MAX_INPUT_SECONDS</c> the bound
/// per input (default 2), <c>SECUREMESH_FUZZ_SEED</c> replays a CsCheck seed. The longer run is tests/SecureMesh.Fuzz.
/// </summary>
[Collection(nameof(FuzzCollection))]
public class BoundedFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public void Frame_reader_survives_bounded_fuzzing() => Fuzz(FrameTarget.Target);

    [Fact]
    public void Multistream_select_survives_bounded_fuzzing() => Fuzz(MultistreamTarget.Target);

    [Fact]
    public void Identify_message_parser_survives_bounded_fuzzing() => Fuzz(IdentifyTarget.Target);

    [Fact]
    public void Handshake_messages_survive_bounded_fuzzing() => Fuzz(HandshakeTarget.Target);

    [Fact]
    public void Handshake_payload_parser_survives_bounded_fuzzing() => Fuzz(PayloadTarget.Target);

    [Fact]
    public void Wire_message_decoder_survives_bounded_fuzzing() => Fuzz(WireTarget.Target);

    [Fact]
    public void Manifest_parser_survives_bounded_fuzzing() => Fuzz(ManifestTarget.Target);

    [Fact]
    public void Multiaddr_binary_parser_survives_bounded_fuzzing() => Fuzz(MultiaddrTarget.Target);

    [Fact]
    public void Yamux_session_survives_bounded_fuzzing() => Fuzz(YamuxTarget.Target);

    [Fact]
    public void Relay_and_hole_punch_parsers_survive_bounded_fuzzing() => Fuzz(RelayTarget.Target);

    /// <summary>The seeds must get past the first checks, or the fuzzing never reaches the parsers' depths.</summary>
    [Fact]
    public void Every_seed_is_accepted_by_its_target()
    {
        foreach (var target in FuzzTargets.All)
        {
            var seeds = target.Seeds();
            Assert.NotEmpty(seeds);
            for (var i = 0; i < seeds.Count; i++)
            {
                Assert.True(target.Run(seeds[i]), $"{target.Name} seed {i} is refused");
            }
        }
    }

    [Fact]
    public void Mutations_change_seeds_and_stay_within_reach()
    {
        byte[] seed = [1, 2, 3, 4, 5, 6, 7, 8];
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 9], FuzzRunner.Mutate(seed, [new Mutation(0, 7, 0, 0)]));
        Assert.Equal([1, 2, 3], FuzzRunner.Mutate(seed, [new Mutation(2, 3, 0, 0)]));
        Assert.Equal([1, 2, 0xFF, 0xFF, 5, 6, 7, 8], FuzzRunner.Mutate(seed, [new Mutation(5, 2, 6, 0)]));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 0xFF, 0xFF], FuzzRunner.Mutate(seed, [new Mutation(5, 7, 6, 0)]));
        Assert.Equal([1, 6, 7, 8], FuzzRunner.Mutate(seed, [new Mutation(4, 1, 0, 3)]));
        // Positions wrap, and an empty input stays usable.
        Assert.Equal([], FuzzRunner.Mutate([], [new Mutation(0, 12345, 3, 0), new Mutation(4, 9, 0, 9)]));
        Assert.Equal([7, 7], FuzzRunner.Mutate([], [new Mutation(3, 12345, 7, 1)]));
    }

    [Fact]
    public void A_crash_fails_the_run_with_the_input_in_hex()
    {
        var target = new FuzzTarget("crashy", "throws on 42 42", data => data.Length >= 2 && data[0] == 0x42 && data[1] == 0x42
            ? throw new IndexOutOfRangeException("planted")
            : data.Length == 2, () => [[0x42, 0x43]]);
        var e = Assert.Throws<FuzzFindingException>(() => FuzzRunner.Run(target, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)));
        output.WriteLine(e.Message);
        Assert.Contains("4242", e.Message, StringComparison.Ordinal);
        Assert.Contains("planted", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_slow_input_fails_the_run()
    {
        var target = new FuzzTarget("slow", "sleeps on 01", data =>
        {
            if (data.Length > 0 && data[0] == 0x01)
            {
                Thread.Sleep(30);
            }
            return true;
        }, () => [[0x00]]);
        var e = Assert.Throws<FuzzFindingException>(() => FuzzRunner.Run(target, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(10)));
        output.WriteLine(e.Message);
        Assert.Contains("took", e.ToString(), StringComparison.Ordinal);
    }

    private void Fuzz(FuzzTarget target)
    {
        var seconds = Setting("SECUREMESH_FUZZ_SECONDS", 4);
        var maxInput = Setting("SECUREMESH_FUZZ_MAX_INPUT_SECONDS", 2);
        var seed = Environment.GetEnvironmentVariable("SECUREMESH_FUZZ_SEED");
        var result = FuzzRunner.Run(target, TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(maxInput), string.IsNullOrEmpty(seed) ? null : seed);
        output.WriteLine(result.ToString());
        Assert.True(result.Executions > target.Seeds().Count, $"only {result.Executions} executions ran");
    }

    private static double Setting(string name, double fallback) =>
        double.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : fallback;
}
