using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>Downloads with progress, rate, peers in use and time left; cancel.</summary>
internal sealed class TransfersPage : TuiPage
{
    private readonly RecordTable<TransferView> _table = new(new()
    {
        ["Name"] = t => t.Name,
        ["Progress"] = t => Fmt.Bar(t.Progress),
        ["Rate"] = t => Fmt.Rate(t.BytesPerSecond),
        ["Peers"] = t => t.Peers,
        ["Left"] = t => Fmt.Duration(t.Remaining),
        ["State"] = t => t.Reason is null ? Fmt.State(t.State) : $"{Fmt.State(t.State)}: {t.Reason}",
    });

    private readonly Label _overall;

    public TransfersPage(TuiApp tui)
        : base(tui, "Transfers", "c cancel the selected download")
    {
        TabTitle = "Xfers";
        _overall = new Label { X = 0, Y = 0, Text = "All downloads" };
        Overall = new ProgressBar { X = 14, Y = 0, Width = Dim.Fill(), Height = 1, Fraction = 0 };
        _table.MaxWidth(0, 24);
        _table.View.Y = 1;
        _table.View.Height = Dim.Fill();
        Add(_overall, Overall, _table.View);
    }

    /// <summary>The combined progress of the active downloads.</summary>
    public ProgressBar Overall { get; }

    public IReadOnlyList<TransferView> Rows => _table.Rows;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var transfers = await client.ListTransfersAsync(cancellationToken).ConfigureAwait(false);
        return () =>
        {
            _table.SetRows(transfers);
            var active = transfers.Where(t => t.State is TransferViewState.Downloading or TransferViewState.Queued or TransferViewState.Verifying).ToList();
            var total = active.Sum(t => t.BytesTotal);
            Overall.Fraction = total <= 0 ? 0 : (float)Math.Clamp((double)active.Sum(t => t.BytesDone) / total, 0, 1);
        };
    }

    public override void FocusDefault() => _table.View.SetFocus();

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing || !(key == Key.C || key == Key.X || key == Key.Delete))
        {
            return false;
        }
        if (_table.Selected is not { } transfer)
        {
            Tui.ShowMessage("Transfers", "Select a download first.");
        }
        else if (Tui.Confirm("Cancel download", $"Stop downloading {transfer.Name}?\nVerified chunks are kept for a later resume.", "_Stop it"))
        {
            Tui.RunAction("Cancel download", ct => Tui.Client.CancelTransferAsync(transfer.ContentId, ct));
        }
        return true;
    }
}
