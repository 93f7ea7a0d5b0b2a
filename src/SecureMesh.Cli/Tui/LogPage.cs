using System.Globalization;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>The audit log, newest first, and a check of its hash chain.</summary>
internal sealed class LogPage : TuiPage
{
    private readonly RecordTable<LogEntryView> _table = new(new()
    {
        ["Seq"] = e => e.Seq.ToString(CultureInfo.InvariantCulture),
        ["Time"] = e => Fmt.Time(e.Time),
        ["Event"] = e => e.Event,
        ["Peer"] = e => Fmt.ShortId(e.PeerId),
        ["Detail"] = e => e.Detail,
    });

    public LogPage(TuiApp tui)
        : base(tui, "Log", "v verify the hash chain")
    {
        Verification = new Label { X = 0, Y = 0, Width = Dim.Fill(), Text = "Hash chain not checked yet (v)." };
        _table.View.Y = 1;
        _table.View.Height = Dim.Fill();
        Add(Verification, _table.View);
    }

    public Label Verification { get; }

    public IReadOnlyList<LogEntryView> Rows => _table.Rows;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var entries = await client.ListLogAsync(Tui.Options.LogLimit, cancellationToken).ConfigureAwait(false);
        var newestFirst = entries.OrderByDescending(e => e.Seq).ToList();
        return () => _table.SetRows(newestFirst);
    }

    public override void FocusDefault() => _table.View.SetFocus();

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing || key != Key.V)
        {
            return false;
        }
        Tui.RunQuery("Checking the audit log", ct => Tui.Client.VerifyLogAsync(ct), result =>
        {
            // The check is a snapshot: say when it was taken, since entries keep arriving below it.
            Verification.Text = $"Checked {DateTimeOffset.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture)}: {Describe(result)}";
            Tui.ShowMessage("Audit log", Verification.Text, error: !result.Ok);
        });
        return true;
    }

    internal static string Describe(LogVerificationView result) => result.Ok
        ? $"OK: {result.Entries} entries, hash chain intact."
            + (result.HeadSeq > 0 ? $" Anchor to keep elsewhere (log --verify --anchor): {result.HeadSeq}:{result.HeadHash}" : string.Empty)
        : $"BROKEN at entry {result.BrokenSeq}: {result.Reason ?? "hash mismatch"}";
}
