using SecureMesh.Cli.Tui;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>The size the UI takes when the terminal reports none (a pseudo-terminal nobody sized says 0×0).</summary>
public sealed class TuiTerminalSizeTests
{
    private static Func<string, string?> Env(string? columns, string? lines) => name => name switch
    {
        "COLUMNS" => columns,
        "LINES" => lines,
        _ => null,
    };

    [Fact]
    public void A_terminal_with_a_size_keeps_it()
    {
        Assert.Null(TuiApp.SizeWhenTerminalHasNone(120, 40, Env("200", "50")));
        Assert.Null(TuiApp.SizeWhenTerminalHasNone(1, 1, Env(null, null)));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(0, 24)]
    [InlineData(80, 0)]
    [InlineData(-1, -1)]
    public void A_terminal_without_one_gets_80_by_24(int width, int height) =>
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(width, height, Env(null, null)));

    [Fact]
    public void COLUMNS_and_LINES_are_used_when_both_are_sane()
    {
        Assert.Equal((132, 43), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("132", "43")));
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("132", null)));
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("0", "43")));
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("-5", "43")));
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("99999999", "43")));
        Assert.Equal((80, 24), TuiApp.SizeWhenTerminalHasNone(0, 0, Env("12a", "43")));
    }
}
