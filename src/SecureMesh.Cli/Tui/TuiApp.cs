using SecureMesh.Core;
using Terminal.Gui.App;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>Timing knobs of the terminal UI.</summary>
internal sealed record TuiOptions
{
    /// <summary>How often the status and the visible view are re-read; null turns polling off (tests refresh by hand).</summary>
    public TimeSpan? PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long one client call may take before the UI gives up on it.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How many audit entries the Log view reads.</summary>
    public int LogLimit { get; init; } = 200;
}

/// <summary>
/// The terminal UI: a top bar with this node's identity, one view per concern, reachable with F1..F8 or Alt+1..8 (bare 1..8
/// in views without a text field, where the digits are typed instead) and by mouse.
/// The client is only ever called off the UI thread, with a timeout; results come back through <see cref="IApplication.Invoke(Action)"/>.
/// </summary>
internal sealed class TuiApp : IDisposable
{
    // 47 columns: with "  | node: the node is not running" the status line still fits in 80. F8 (and Alt+8, 8) is the eighth view.
    internal const string GlobalHelp = "F1-F7/Alt+1-7 views, F8  Tab focus  Ctrl+Q quit";

    private static readonly Key[] FunctionKeys = [Key.F1, Key.F2, Key.F3, Key.F4, Key.F5, Key.F6, Key.F7, Key.F8];
    private static readonly Key[] Digits = [Key.D1, Key.D2, Key.D3, Key.D4, Key.D5, Key.D6, Key.D7, Key.D8];

    private readonly IApplication _app;
    private readonly INodeClient _client;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private readonly Label _identityLine;
    private readonly Label _addressLine;
    private readonly Label _pageHelp;
    private readonly Label _statusLine;
    private readonly FrameView _frame;
    private readonly Button[] _tabs;
    private readonly TuiPage[] _pages;
    private volatile TuiPage _current;
    private volatile bool _stopped;
    private int _refreshPending;
    private string? _pollError;
    private Task? _poller;

    public TuiApp(IApplication app, INodeClient client, TuiOptions? options = null)
    {
        _app = app;
        _client = client;
        Options = options ?? new TuiOptions();
        Top = new Runnable { Width = Dim.Fill(), Height = Dim.Fill(), CanFocus = true };

        _identityLine = new Label { X = 0, Y = 0, Width = Dim.Fill(), Text = "Peer ID …  (starting node…)" };
        _addressLine = new Label { X = 0, Y = 1, Width = Dim.Fill(), Text = "Fingerprint …" };
        Peers = new PeersPage(this);
        Shares = new SharesPage(this);
        Search = new SearchPage(this);
        Transfers = new TransfersPage(this);
        Quarantine = new QuarantinePage(this);
        Log = new LogPage(this);
        Groups = new GroupsPage(this);
        Backups = new BackupsPage(this);
        _pages = [Peers, Shares, Search, Transfers, Quarantine, Log, Groups, Backups];
        _tabs = new Button[_pages.Length];
        View? previous = null;
        for (var i = 0; i < _pages.Length; i++)
        {
            var index = i;
            var tab = new Button
            {
                // One column between tabs; the active one is bracketed. See TabText for how eight fit in 80 columns.
                X = previous is null ? 0 : Pos.Right(previous) + 1,
                Y = 2,
                NoDecorations = true,
                NoPadding = true,
                ShadowStyle = null,
                CanFocus = false,
                Text = TabText(i, active: false),
            };
            // A click on a tab switches to it, like its key.
            tab.Accepting += (_, e) =>
            {
                ShowPage(index);
                e.Handled = true;
            };
            _tabs[i] = tab;
            previous = tab;
        }
        _frame = new FrameView { X = 0, Y = 3, Width = Dim.Fill(), Height = Dim.Fill(2), CanFocus = true };
        foreach (var page in _pages)
        {
            page.Visible = false;
            _frame.Add(page);
        }
        _pageHelp = new Label { X = 0, Y = Pos.AnchorEnd(2), Width = Dim.Fill() };
        _statusLine = new Label { X = 0, Y = Pos.AnchorEnd(1), Width = Dim.Fill(), Text = GlobalHelp };
        Top.Add(_identityLine, _addressLine);
        Top.Add(_tabs);
        Top.Add(_frame, _pageHelp, _statusLine);
        _current = Peers;
        ShowPage(0);
        _app.Keyboard.KeyDown += OnKeyDown;
    }

    public TuiOptions Options { get; }

    /// <summary>The runnable the UI lives in; tests <c>Begin</c> it, <see cref="Run"/> runs it.</summary>
    public Runnable Top { get; }

    public IApplication App => _app;

    public INodeClient Client => _client;

    public PeersPage Peers { get; }

    public SharesPage Shares { get; }

    public SearchPage Search { get; }

    public TransfersPage Transfers { get; }

    public QuarantinePage Quarantine { get; }

    public LogPage Log { get; }

    public GroupsPage Groups { get; }

    public BackupsPage Backups { get; }

    public TuiPage CurrentPage => _current;

    /// <summary>The last status the top bar shows; null until the first answer.</summary>
    public NodeStatusView? Status { get; private set; }

    /// <summary>Runs until Ctrl+Q; polls the node in the background meanwhile.</summary>
    public void Run()
    {
        if (SizeWhenTerminalHasNone(_app.Screen.Width, _app.Screen.Height, Environment.GetEnvironmentVariable) is { } size)
        {
            _app.Driver?.SetScreenSize(size.Width, size.Height);
        }
        StartPolling();
        try
        {
            _app.Run(Top, OnUnhandled);
        }
        finally
        {
            Stop();
        }
    }

    /// <summary>
    /// The screen size to use when the terminal reports none. A pseudo-terminal that nobody gave a size (made by
    /// <c>script</c> or <c>ssh -tt</c> without a terminal of their own, or by some container runtimes) says 0×0, and
    /// Terminal.Gui 2.5.0 then lays the views out at a negative width and throws on the first dialog (this ended
    /// `securemesh tui` at once with "width ('-3') must be a non-negative value"). As curses programs do: $COLUMNS × $LINES
    /// when both are set, else 80 × 24. Null when the terminal has a size.
    /// </summary>
    internal static (int Width, int Height)? SizeWhenTerminalHasNone(int width, int height, Func<string, string?> environment)
    {
        if (width > 0 && height > 0)
        {
            return null;
        }
        static int? Positive(string? text) =>
            int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 10_000 ? n : null;
        return Positive(environment("COLUMNS")) is { } columns && Positive(environment("LINES")) is { } lines ? (columns, lines) : (80, 24);
    }

    /// <summary>Starts the background poll (no-op when polling is off).</summary>
    public void StartPolling()
    {
        if (Options.PollInterval is { } interval && _poller is null)
        {
            _poller = Task.Run(() => PollLoopAsync(interval, _shutdown.Token));
        }
        else
        {
            RequestRefresh();
        }
    }

    /// <summary>Ends the session: no more polls, no more UI updates, the main loop stops.</summary>
    public void Quit()
    {
        Stop();
        _app.RequestStop(Top);
    }

    public void ShowPage(int index)
    {
        var page = _pages[index];
        foreach (var p in _pages)
        {
            p.Visible = ReferenceEquals(p, page);
        }
        for (var i = 0; i < _tabs.Length; i++)
        {
            _tabs[i].Text = TabText(i, i == index);
        }
        _frame.Title = page.Title;
        _pageHelp.Text = page.HelpText;
        _current = page;
        page.FocusDefault();
        RequestRefresh();
    }

    /// <summary>
    /// <c>[F1 Peers]</c> for the active tab, <c>F2 Shares</c> for the others. Eight full names and their gaps take 85
    /// columns; on a narrower screen the inactive tabs use their short names (Find, Xfers, Bkup), so the row fits in 80.
    /// </summary>
    private string TabText(int index, bool active)
    {
        var page = _pages[index];
        if (active)
        {
            return $"[F{index + 1} {page.Title}]";
        }
        var full = _pages.Select((p, i) => $"F{i + 1} {p.Title}".Length).Sum() + _pages.Length + 1;
        var title = page.TabTitle.Length > 0 && (_app.Driver?.Cols ?? 80) < full ? page.TabTitle : page.Title;
        return $"F{index + 1} {title}";
    }

    private void OnKeyDown(object? sender, Key key)
    {
        if (_stopped || key.Handled || !ReferenceEquals(_app.TopRunnableView, Top))
        {
            return;
        }
        if (key == Key.Q.WithCtrl)
        {
            key.Handled = true;
            Quit();
            return;
        }
        if (key == Key.Esc)
        {
            // Esc is the library's default quit key; here it only leaves dialogs, so a stray Esc never closes the UI.
            key.Handled = true;
            return;
        }
        var typing = Top.MostFocused is TextField;
        for (var i = 0; i < FunctionKeys.Length; i++)
        {
            // A bare digit switches views only where there is no text field to type it into.
            if (key == FunctionKeys[i] || key == Digits[i].WithAlt || (!typing && _current.InputField is null && key == Digits[i]))
            {
                key.Handled = true;
                ShowPage(i);
                return;
            }
            if (!typing && key == Digits[i] && _current.InputField is { } field)
            {
                // Typed into the view's field (where it goes), never taken for a view switch.
                key.Handled = true;
                field.SetFocus();
                // Appended at the end (focusing may select the field's text, which a typed key would replace).
                field.Text += ((char)('1' + i)).ToString();
                field.InsertionPoint = new System.Globalization.StringInfo(field.Text).LengthInTextElements;
                return;
            }
        }
        try
        {
            if (_current.HandleKey(key, typing))
            {
                key.Handled = true;
            }
        }
        catch (Exception ex)
        {
            // Whatever a view's handler throws becomes a message, never a crash that leaves the terminal raw.
            key.Handled = true;
            ShowError(_current.Title, ex);
        }
    }

    private bool OnUnhandled(Exception ex)
    {
        // A bug in a handler must not leave the terminal in raw mode with a stack trace: say it and carry on.
        ShowError("The terminal UI", ex);
        return true;
    }

    // ---- talking to the client, never on the UI thread ----

    /// <summary>Calls the client off the UI thread with the call timeout; shows any error as a message box; refreshes after success.</summary>
    public void RunAction(string what, Func<CancellationToken, Task> call, Action? then = null) =>
        RunQuery<bool>(what, async ct =>
        {
            await call(ct).ConfigureAwait(false);
            return true;
        }, _ => then?.Invoke());

    /// <summary>Like <see cref="RunAction"/>, handing the result to <paramref name="then"/> on the UI thread.</summary>
    public void RunQuery<T>(string what, Func<CancellationToken, Task<T>> call, Action<T> then)
    {
        if (_stopped)
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_shutdown.Token);
            timeout.CancelAfter(Options.CallTimeout);
            try
            {
                var result = await call(timeout.Token).ConfigureAwait(false);
                Post(() => then(result));
                RequestRefresh();
            }
            catch (OperationCanceledException) when (_shutdown.IsCancellationRequested)
            {
            }
            catch (Exception ex)
            {
                Post(() => ShowError(what, ex));
            }
        });
    }

    /// <summary>Re-reads the status and the visible view soon (coalesced with a refresh already running).</summary>
    public void RequestRefresh()
    {
        if (_stopped)
        {
            return;
        }
        Interlocked.Exchange(ref _refreshPending, 1);
        _ = Task.Run(() => RefreshAsync(_shutdown.Token));
    }

    private async Task PollLoopAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            do
            {
                Interlocked.Exchange(ref _refreshPending, 1);
                await RefreshAsync(cancellationToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _refreshPending) == 1 && !cancellationToken.IsCancellationRequested)
        {
            if (!await _refreshGate.WaitAsync(0, CancellationToken.None).ConfigureAwait(false))
            {
                return; // the running refresh sees the pending flag and goes round again
            }
            try
            {
                while (Interlocked.Exchange(ref _refreshPending, 0) == 1 && !cancellationToken.IsCancellationRequested)
                {
                    await RefreshOnceAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                _refreshGate.Release();
            }
        }
    }

    private async Task RefreshOnceAsync(CancellationToken cancellationToken)
    {
        var page = _current;
        NodeStatusView? status = null;
        Action? apply = null;
        Exception? error = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Options.CallTimeout);
        try
        {
            status = await _client.GetStatusAsync(timeout.Token).ConfigureAwait(false);
            apply = await page.LoadAsync(_client, timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            error = ex;
        }
        Post(() =>
        {
            if (status is not null)
            {
                ApplyStatus(status);
            }
            apply?.Invoke();
            ReportPollOutcome(error);
        });
    }

    private void ApplyStatus(NodeStatusView status)
    {
        Status = status;
        _identityLine.Text = TerminalText.Safe($"Peer ID {status.PeerId}  {(status.Running ? "node running" : "node stopped")}");
        var listen = status.ListenAddresses.Count == 0 ? "not listening" : string.Join(", ", status.ListenAddresses);
        var reach = status.Reach is null ? string.Empty : $"  Reach {status.Reach}";
        _addressLine.Text = TerminalText.Safe($"Fingerprint {status.Fingerprint}  Listen {listen}  Connections {status.Connections}{reach}");
    }

    private void ReportPollOutcome(Exception? error)
    {
        if (error is null)
        {
            if (_pollError is not null)
            {
                _pollError = null;
                _statusLine.Text = GlobalHelp;
            }
            return;
        }
        var message = Describe(error);
        _statusLine.Text = $"{GlobalHelp}  | node: {TerminalText.Safe(message)}";
        // A poll failure is shown once as a message box when it starts, then only on the status line, so a node that is
        // down does not bury the user in dialogs every half second.
        if (!string.Equals(_pollError, message, StringComparison.Ordinal))
        {
            _pollError = message;
            ShowError("Reading from the node", error);
        }
    }

    /// <summary>Runs <paramref name="action"/> on the UI thread, unless the UI has shut down.</summary>
    public void Post(Action action)
    {
        if (_stopped)
        {
            return;
        }
        try
        {
            _app.Invoke(() =>
            {
                if (_stopped)
                {
                    return;
                }
                try
                {
                    action();
                }
                catch (Exception ex)
                {
                    ShowError("Updating the screen", ex);
                }
            });
        }
        catch (ObjectDisposedException)
        {
        }
        catch (InvalidOperationException)
        {
            // the application was shut down between the check and the call
        }
    }

    // ---- dialogs (UI thread only) ----

    /// <summary>The one-line text shown for a failure: the project's own messages as they are, anything else named.</summary>
    public string Describe(Exception ex) => ex switch
    {
        SecureMeshException sme => sme.Message,
        OperationCanceledException => $"no answer from the node within {Options.CallTimeout.TotalSeconds:0.#} s",
        TimeoutException => $"no answer from the node: {ex.Message}",
        UnauthorizedAccessException => $"permission denied: {ex.Message}",
        IOException => ex.Message,
        _ => $"unexpected error ({ex.GetType().Name}): {ex.Message}",
    };

    public void ShowError(string what, Exception ex) => ShowMessage($"{what} failed", Describe(ex), error: true);

    public void ShowMessage(string title, string message, bool error = false)
    {
        if (_stopped)
        {
            return;
        }
        // Messages quote peers' names and error texts: keep our line breaks, nothing else that could steer the terminal.
        title = TerminalText.Safe(title);
        message = TerminalText.SafeLines(message);
        if (error)
        {
            MessageBox.ErrorQuery(_app, title, message, "_OK");
        }
        else
        {
            MessageBox.Query(_app, title, message, "_OK");
        }
    }

    /// <summary>Asks a question whose safe answer is the default: Enter or Esc cancels, only <paramref name="yes"/> proceeds.</summary>
    public bool Confirm(string title, string message, string yes) =>
        !_stopped && MessageBox.Query(_app, TerminalText.Safe(title), TerminalText.SafeLines(message), yes, "_Cancel") == 0;

    /// <summary>
    /// Like <see cref="Prompt"/>, but the values are checked by <paramref name="validate"/> (null: fine, else the error):
    /// an error is shown and the dialog opens again with what was typed, until the values pass or the user cancels.
    /// </summary>
    public string[]? PromptValid(string title, string? intro, Func<string[], string?> validate, params (string Label, string Initial)[] fields)
    {
        while (true)
        {
            var values = Prompt(title, intro, fields);
            if (values is null)
            {
                return null;
            }
            if (validate(values) is not { } error)
            {
                return values;
            }
            ShowMessage(title, error, error: true);
            fields = [.. fields.Select((f, i) => (f.Label, values[i]))];
        }
    }

    /// <summary>A dialog with labelled text fields; null when cancelled, else the values (trimmed).</summary>
    public string[]? Prompt(string title, string? intro, params (string Label, string Initial)[] fields)
    {
        if (_stopped)
        {
            return null;
        }
        var width = Math.Max(40, Math.Min(76, (_app.Driver?.Cols ?? 80) - 4));
        using var dialog = new Dialog { Title = title, Width = width };
        var y = 0;
        intro = intro is null ? null : TerminalText.SafeLines(intro);
        if (!string.IsNullOrEmpty(intro))
        {
            dialog.Add(new Label { X = 0, Y = 0, Width = Dim.Fill(), Text = intro });
            // The label wraps inside the dialog; leave room for every wrapped line.
            y = intro.Split('\n').Sum(line => Math.Max(1, (line.Length + width - 5) / (width - 4))) + 1;
        }
        var labelWidth = fields.Max(f => f.Label.Length) + 1;
        var inputs = new TextField[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            dialog.Add(new Label { X = 0, Y = y, Text = fields[i].Label });
            inputs[i] = new TextField { X = labelWidth, Y = y, Width = Dim.Fill(), Text = fields[i].Initial };
            dialog.Add(inputs[i]);
            y += 2;
        }
        dialog.AddButton(new Button { Text = "_Cancel" });
        dialog.AddButton(new Button { Text = "_OK" });
        inputs[0].SetFocus();
        _app.Run(dialog);
        if (dialog.Result != 1)
        {
            return null;
        }
        return [.. inputs.Select(t => t.Text.Trim())];
    }

    private void Stop()
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        _app.Keyboard.KeyDown -= OnKeyDown;
        _shutdown.Cancel();
    }

    public void Dispose()
    {
        Stop();
        try
        {
            _poller?.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
        Top.Dispose();
        _shutdown.Dispose();
        _refreshGate.Dispose();
    }
}
