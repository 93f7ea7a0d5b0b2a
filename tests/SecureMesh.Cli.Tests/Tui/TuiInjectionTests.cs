using System.Text.RegularExpressions;
using SecureMesh.Cli.Tui;
using SecureMesh.Core;
using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>
/// What a hostile peer controls (search hits, transfer names and reasons, quarantine reasons, log details, error texts)
/// is drawn by the UI; the bytes that go to the terminal must carry no sequence of the peer's and no bidi control.
/// </summary>
[Collection(TuiCollection.Name)]
public sealed partial class TuiInjectionTests
{
    // OSC 0 (window title) with BEL, a one-byte C1 CSI (erase screen), then a right-to-left override.
    private const string Evil = "\u001b]0;PWNED\u0007\u009b2J\u202Eexe.txt";

    /// <summary>
    /// The visible form of <see cref="Evil"/>'s start once made safe (Terminal.Gui alone would show control pictures,
    /// ␛ and ␇, so this also proves our sanitizer ran).
    /// </summary>
    private const string Shown = "?]0;PWNED?";

    [Fact]
    public void Hostile_names_reasons_details_and_errors_reach_the_terminal_without_escape_sequences_or_bidi_controls()
    {
        var client = new FakeNodeClient();
        var strangerId = FakeNodeClient.PeerIdOf(9);
        client.Peers.Add(new PeerView(strangerId.Text, Evil, PeerViewState.Pending, false, strangerId.Fingerprint, null, []));
        client.SearchResults.Add(new SearchResultView("b3:9999dddd", Evil + " holiday", 10, [FakeNodeClient.AliceId]));
        client.Transfers.Add(new TransferView("b3:9999dddd", Evil, 1, 10, 0, 1, null, TransferViewState.Failed, Evil));
        client.Quarantine.Clear();
        client.Quarantine.Add(new QuarantineItemView("q9", "b3:9999dddd", Evil, "held", Evil, 10, FakeNodeClient.BobId));
        client.Log.Add(new LogEntryView(4, DateTimeOffset.UnixEpoch.AddMinutes(3), "quarantine.held", FakeNodeClient.BobId, Evil));
        using var h = new TuiHarness(client, width: 160, height: 48);

        h.WaitFor(() => h.Tui.Peers.Rows.Count == 4, "the hostile peer");
        AssertInertAndShown(h, "peers view");

        h.Press(Key.F3);
        foreach (var c in "holiday")
        {
            h.Press(new Key(c));
        }
        h.Press(Key.Enter);
        h.WaitFor(() => h.Tui.Search.Rows.Any(r => r.ContentId == "b3:9999dddd"), "the hostile search hit");
        AssertInertAndShown(h, "search results");
        var table = h.Tui.Search.SubViews.OfType<Terminal.Gui.Views.TableView>().Single();
        table.SetSelection(0, h.Tui.Search.Rows.ToList().FindIndex(r => r.ContentId == "b3:9999dddd"), false);
        h.Pump();
        h.Press(Key.F);
        h.WaitFor(() => h.Client.Called("FetchAsync b3:9999dddd"), "the fetch");
        h.WaitForScreen($"Fetching {Shown}");
        AssertInertAndShown(h, "fetch summary");

        h.Press(Key.F4);
        h.WaitForScreen(Shown);
        AssertInertAndShown(h, "transfers view");

        h.Press(Key.F5);
        h.WaitForScreen(Shown);
        AssertInertAndShown(h, "quarantine view");
        var dialog = CaptureNextDialog(h);
        h.Press(Key.I);
        h.WaitFor(() => dialog() is not null, "the inspect dialog");
        AssertInert(dialog()!, "inspect dialog");
        Assert.Contains(Shown, dialog(), StringComparison.Ordinal);

        h.Press(Key.F6);
        h.WaitForScreen(Shown);
        AssertInertAndShown(h, "log view");

        var error = CaptureNextDialog(h);
        h.Client.Faults["ListLogAsync"] = new SecureMeshException(SecureMeshErrorKind.Protocol, $"peer said {Evil}");
        h.Refresh(() => error() is not null, "the error message");
        AssertInert(error()!, "error dialog");
        Assert.Contains(Shown, error(), StringComparison.Ordinal);
        h.Refresh(() => h.Screen.Contains($"node: peer said {Shown}", StringComparison.Ordinal), "the status line");
        AssertInertAndShown(h, "status line");
    }

    [Fact]
    public void The_trust_question_shows_a_hostile_name_inert()
    {
        var peer = new PeerView(FakeNodeClient.PeerIdOf(9).Text, Evil, PeerViewState.Pending, true, FakeNodeClient.PeerIdOf(9).Fingerprint, "alpha-bravo-1", []);
        var question = PeersPage.TrustQuestion(peer);
        var client = new FakeNodeClient();
        client.Peers.Add(peer);
        using var h = new TuiHarness(client, width: 160, height: 48);
        h.WaitFor(() => h.Tui.Peers.Rows.Count == 4, "the hostile peer");
        var table = h.Tui.Peers.SubViews.OfType<Terminal.Gui.Views.TableView>().Single();
        table.SetSelection(0, h.Tui.Peers.Rows.ToList().FindIndex(p => p.Name == Evil), false);
        h.Pump();
        string? dialog = null;
        h.Dialogs.Enqueue(d =>
        {
            dialog = Ansi(h);
            d.Key(Key.Enter); // Cancel
        });
        h.Press(Key.T);
        h.WaitFor(() => dialog is not null, "the trust question");
        Assert.Contains(Evil, question, StringComparison.Ordinal);
        AssertInert(dialog!, "trust question");
        Assert.Contains(Shown, dialog, StringComparison.Ordinal);
        Assert.Contains("alpha-bravo-1", dialog, StringComparison.Ordinal);
        Assert.False(h.Client.Called("TrustAsync"));
    }

    /// <summary>Answers the next dialog with Enter; the result gives what the terminal showed of it (null until then).</summary>
    private static Func<string?> CaptureNextDialog(TuiHarness h)
    {
        string? shown = null;
        h.Dialogs.Enqueue(d =>
        {
            shown = Ansi(h);
            d.Key(Key.Enter);
        });
        return () => shown;
    }

    private static string Ansi(TuiHarness h)
    {
        h.App.LayoutAndDraw();
        return h.App.Driver!.ToAnsi();
    }

    private static void AssertInertAndShown(TuiHarness h, string what)
    {
        var ansi = Ansi(h);
        AssertInert(ansi, what);
        Assert.True(ansi.Contains(Shown, StringComparison.Ordinal), $"{what}: the hostile text is not on the screen in its safe form, so this proves nothing");
    }

    /// <summary>
    /// The driver's own output is CSI sequences (colours, cursor moves) and text. Anything else (an OSC, a raw control,
    /// a C1 byte, a bidi or zero-width character) came from the data.
    /// </summary>
    private static void AssertInert(string ansi, string what)
    {
        var text = DriverSequence().Replace(ansi, string.Empty);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c is '\r' or '\n')
            {
                continue;
            }
            Assert.False(TerminalInjectionTests.Dangerous(c),
                $"{what}: U+{(int)c:X4} reaches the terminal: …{text[Math.Max(0, i - 30)..Math.Min(text.Length, i + 30)].Replace("\u001b", "<ESC>", StringComparison.Ordinal)}…");
        }
    }

    [GeneratedRegex(@"\u001b\[[0-9;:?<=>]*[ -/]*[@-~]")]
    private static partial Regex DriverSequence();
}
