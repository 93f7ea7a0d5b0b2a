namespace SecureMesh.Cli.Tests;

/// <summary>Issue 14, finding 8: <c>config set chunk-size</c> refuses a size whose chunk could not travel in one message.</summary>
public sealed class ChunkSizeSettingTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void A_chunk_size_over_the_message_cap_is_refused_with_a_clear_line_and_the_largest_is_accepted()
    {
        Assert.Equal(0, _cli.Home_("init").ExitCode);
        var refused = _cli.Home_("config", "set", "chunk-size", "32m");
        Assert.NotEqual(0, refused.ExitCode);
        var line = Assert.Single(refused.ErrLines);
        Assert.Contains("chunk-size", line, StringComparison.Ordinal);
        Assert.Contains("must fit in one", line, StringComparison.Ordinal);
        Assert.Contains("16MiB", line, StringComparison.Ordinal);

        var accepted = _cli.Home_("config", "set", "chunk-size", "16m");
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Equal("16777216", _cli.Home_("config", "get", "chunk-size").Out.Trim());
    }
}
