<?php
// The plugin's answers as PHP-FPM behind nginx sends them: the chat page (a capture
// of the genuine plugin's) and the chat's stream, each event flushed on its own as the
// plugin does, the script then working on for LATE_MS before it ends (the body's end
// marker follows only then). Both generations, by GENERATION.
$generation = getenv('GENERATION');
$late_ms = intval(getenv('LATE_MS'));
$origin = 'https://127.0.0.1:' . $_SERVER['SERVER_PORT'];

function event_stream() {
    header('Content-Type: text/event-stream; charset=utf-8');
    header('Cache-Control: no-cache');
    header('X-Accel-Buffering: no');
    while (ob_get_level()) { ob_end_flush(); }
}

function send($text) {
    echo $text;
    flush();
}

function finish($late_ms) {
    if ($late_ms > 0) { usleep($late_ms * 1000); }
    exit;
}

if (strpos($_SERVER['REQUEST_URI'], '/wp-admin/admin-ajax.php') === 0) {
    $action = isset($_REQUEST['action']) ? $_REQUEST['action'] : '';
    if ($generation === 'legacy' && $_SERVER['REQUEST_METHOD'] === 'POST') {
        event_stream();
        $id = 'chatcmpl-' . bin2hex(random_bytes(8));
        $chunk = function ($delta, $finish) use ($id) {
            return 'data: ' . json_encode(array('id' => $id, 'object' => 'chat.completion.chunk',
                'choices' => array(array('index' => 0, 'delta' => $delta, 'finish_reason' => $finish)))) . "\n\n";
        };
        $words = array('You said: ', $_POST['message']);
        send($chunk(array('role' => 'assistant', 'content' => ''), null));
        foreach ($words as $w) { send($chunk(array('content' => $w), null)); }
        send($chunk(new stdClass, 'stop') . "data: [DONE]\n\n");
        send(json_encode(array('status' => 'success', 'data' => implode('', $words), 'log' => false)));
        finish($late_ms);
    }
    if ($action === 'aipkit_cache_sse_message') {
        // The message is kept where the stream request finds it (one file per key).
        $key = 'aipkit_sse_' . bin2hex(random_bytes(16));
        file_put_contents(getenv('CACHE_DIR') . '/' . $key, $_POST['message']);
        header('Content-Type: application/json; charset=UTF-8');
        echo json_encode(array('success' => true, 'data' => array('cache_key' => $key)));
        exit;
    }
    if ($action === 'aipkit_frontend_chat_stream') {
        $path = getenv('CACHE_DIR') . '/' . basename($_GET['cache_key']);
        $message = file_get_contents($path);
        unlink($path);
        event_stream();
        send(':' . str_repeat(' ', 2048) . "\n\n");
        send("event: message_start\ndata: " . json_encode(array('message_id' => 'aipkit-msg-1')) . "\n\n");
        foreach (array('You said: ', $message) as $w) {
            send('data: ' . json_encode(array('delta' => $w)) . "\n\n");
        }
        send("event: done\ndata: {\"finished\":true}\n\n");
        finish($late_ms);
    }
    echo '0';
    exit;
}
header('Content-Type: text/html; charset=UTF-8');
$page = file_get_contents(getenv('PAGE'));
$page = str_replace(array('http://127.0.0.1:8081', 'http://127.0.0.1:8082'), $origin, $page);
echo str_replace('http:\/\/127.0.0.1:8082', str_replace('/', '\/', $origin), $page);
