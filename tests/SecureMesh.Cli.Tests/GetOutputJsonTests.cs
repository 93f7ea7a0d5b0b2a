using System.Text.Json;
using SecureMesh.Cli.Json;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// <c>get --json</c> is written by hand (the serializer's first use costs a one-off command tens of ms of JIT): the
/// output must stay exactly what the serializer writes for the same record, keys, layout and escaping included.
/// </summary>
public sealed class GetOutputJsonTests
{
    public static TheoryData<string?> Texts => new()
    {
        null,
        "payload.bin",
        "quote \" backslash \\ slash / tab \t newline \n",
        "\u001b[31mred\u001b[0m \u202Eevil\u202C \u0000 nul",
        "héllo wörld 日本語 🙂 <script>&amp;</script>",
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Hand_written_json_equals_what_the_serializer_writes(string? text)
    {
        var outputs = new[]
        {
            new GetOutput("b3:abc", text, 67108864, "released", text is null ? null : "/tmp/" + text, text, 7, 64, 3, 293366312.75),
            new GetOutput("b3:abc", text, 0, "failed", null, text, null, 0, 0, 0),
            new GetOutput("b3:abc", text, long.MaxValue, "held", text, null, long.MaxValue, long.MaxValue, long.MinValue, 1e-7),
        };
        foreach (var value in outputs)
        {
            var (byHand, serialized) = (Write(c => c.WriteJson(value.WriteTo)), Write(c => c.WriteJson(value, CliJsonContext.Output.GetOutput)));
            Assert.Equal(serialized, byHand);
        }
    }

    [Fact]
    public void The_keys_are_the_fixed_ones_in_order_with_nulls_written()
    {
        var json = Write(c => c.WriteJson(new GetOutput("b3:abc", null, 1, "failed", null, "no peer", null, 0, 0, 0.5).WriteTo));
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(
            ["contentId", "name", "size", "state", "path", "reason", "quarantineId", "chunkRequests", "resumedChunks", "bytesPerSecond"],
            doc.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("quarantineId").ValueKind);
        Assert.Equal(0.5, doc.RootElement.GetProperty("bytesPerSecond").GetDouble());
    }

    private static string Write(Action<CliContext> write)
    {
        var output = new StringWriter();
        var console = new CliConsole(output, new StringWriter(), new StringReader(string.Empty), _ => null, interactive: false);
        write(new CliContext(console, "/nonexistent", json: true, verbose: false));
        return output.ToString();
    }
}
